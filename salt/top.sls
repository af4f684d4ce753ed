# Every host validates the pillar first (salt/hpc/validate.sls: order 1, failhard), then gets every
# subsystem: each one picks its own hosts from the pillar's nodesets and renders nothing elsewhere.
base:
  '*':
    - hpc.validate
    - node
    - keepalived
    - ipvs
    - frontend
    - diskless
    - natrouter
    - policy_routing
