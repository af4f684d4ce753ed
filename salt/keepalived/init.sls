# VRRP between directors (the SSH VIP) and between NAT routers (the gateway of the special table).
include:
  - hpc.validate
  - keepalived.package
  - keepalived.config
  - keepalived.service
