# Every host validates the pillar first (salt/hpc/validate.sls: order 1, failhard), then applies
# the subsystems of its role. Subsystems pick their own hosts from the pillar's nodesets.
base:
  '*':
    - hpc.validate
    - node
