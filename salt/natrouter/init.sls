# Seed 003's NAT router: forwarding on, nftables forward policy + masquerade in our own table,
# conntrack state synced to the other routers. keepalived (its own formula) holds the VIP.
include:
  - hpc.validate
  - natrouter.package
  - natrouter.config
  - natrouter.service
