# Per-user policy routing (seed 003): the chosen users' traffic leaves by the NAT VIP.
include:
  - hpc.validate
  - policy_routing.package
  - policy_routing.config
