# Node basics (seeds 000, 001): resolver rotation, /etc/hosts from the inventory, shared mounts.
include:
  - hpc.validate
  - node.package
  - node.config
