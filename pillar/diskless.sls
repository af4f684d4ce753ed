# Diskless images and the boot server (seeds 001, 002).
diskless:
  server: labboot1
  default_image: compute
  menu_timeout: 5
  images:
    - name: compute
      suite: bookworm
      packages: [openssh-server, nfs-common]
  boot:                      # every diskless node's boot menu (seed 001's bootmenu.yaml defaults)
    default: image           # after menu_timeout: image (the pinned version), previous or local
    console: ttyS0,115200
    overlay_size: 1G         # RAM overlay over the squashfs root (Scibian's cowsize)
  overrides:                 # the first override naming a node wins; unset keys keep boot's
    - nodes: labcn2
      overlay_size: 2G
