# VRRP between the directors (the SSH VIP) and between the NAT routers (the gateway of table alinat).
keepalived:
  instances:
    - name: lvs_vip
      vrid: 51
      network: wan
      hosts: lablvs[1-2]
      priorities: {lablvs1: 150, lablvs2: 100}
      virtual_ips: [10.12.0.10/24, 10.12.0.9/24]  # the DR and the NAT service's VIPs
      other_virtual_ips:
        admin: [10.11.0.10/24]  # the NAT service's nat_gateway: the frontends' replies follow the VIP
      advert_int: 0.1        # VRRPv3: the VIP moves in 3 x 0.1 s + skew (bench-vip-failover); v3 has no auth
      vrrp_version: 3
    - name: nat_gw
      vrid: 52
      network: ib
      hosts: labnat[1-2]
      priorities: {labnat1: 150, labnat2: 100}
      virtual_ips: [10.13.0.30/16]
      other_virtual_ips:
        wan: [10.12.0.30/24]  # the NAT's outside address moves with the gateway: flows survive failover
      advert_int: 0.05       # VRRPv3 (sub-second); takeover in 3 x 0.05 s + skew, before TCP's first retransmission
      vrrp_version: 3
