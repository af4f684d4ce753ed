# The example cluster: the one the lab builds. Every host gets the whole model:
# /etc/hosts needs the inventory, and each subsystem picks its own hosts from it.
base:
  '*':
    - cluster
    - lvs
    - keepalived
    - policy_routing
    - natrouter
    - frontend
    - diskless
    - node
  # Secrets reach only the hosts that need them.
  'labfe*':
    - secrets.frontend
