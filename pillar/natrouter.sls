# The HA NAT routers of seed 003: forward ib <-> wan only, masquerade on wan, conntrack synced.
natrouter:
  hosts: labnat[1-2]
  inside: ib
  outside: wan
  vrrp_instance: nat_gw
  conntrack_sync: true
