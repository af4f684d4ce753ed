# Diskless nodes: the boot server's DHCP/TFTP (dnsmasq) and HTTP side (lighttpd, iPXE, each node's
# boot menu), so a pillar change and one highstate give its leases, menus and /etc/hosts
# together. Images are built on demand, never by a highstate (salt-run diskless.build, or
# diskless.image): a node whose image has no build yet gets no menu, and the highstate warns.
include:
  - hpc.validate
  - diskless.package
  - diskless.config
  - diskless.service
  - diskless.boot
