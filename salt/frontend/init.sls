# Login frontends behind the SSH VIP: sshd with keepalive (seed 000).
include:
  - hpc.validate
  - frontend.package
  - frontend.config
  - frontend.service
