# Diskless images and the boot server (seeds 001, 002).
diskless:
  server: labboot1
  default_image: compute
  menu_timeout: 5
  images:
    - name: compute
      suite: bookworm
      packages: [openssh-server, nfs-common]
