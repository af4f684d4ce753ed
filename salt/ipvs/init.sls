# The IPVS table of the LVS directors (seeds 000 and 001): the pillar's virtual services and real
# servers, through netlink; keepalived (its own formula) holds the VIP and runs VRRP only.
include:
  - hpc.validate
  - ipvs.package
  - ipvs.config
  - ipvs.service
