# The HA NAT routers of seed 003: forward ib <-> wan only, masquerade on wan, conntrack synced.
natrouter:
  hosts: labnat[1-2]
  inside: ib
  outside: wan
  vrrp_instance: nat_gw
  conntrack_sync: true
  snat_address: 10.12.0.30   # the outside VIP of nat_gw, not each router's own address (masquerade)
