# Seed 003 (GSI): the ALICE users' and group's traffic leaves through the NAT VIP, everyone else's
# follows the default route (to the firewall, which drops it).
policy_routing:
  hosts: labcn[1-2]
  tables:
    - {id: 201, name: alinat}
  routes:
    - {table: alinat, to: 10.13.0.0/16, dev: ib0}
    - {table: alinat, to: default, via: 10.13.0.30, dev: ib0}
  marks:
    - name: alice
      fwmark: 1
      table: alinat
      priority: 100
      users: [aliprod, alise, rgrosso]
      groups: [alice]
