# Diskless nodes: the boot server (DHCP/TFTP). Images, iPXE menus and registration land later.
include:
  - hpc.validate
  - diskless.package
  - diskless.config
  - diskless.service
