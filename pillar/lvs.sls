# SSH login pool behind a virtual IP (seeds 000 and 001): persistence keeps a client on one frontend.
lvs:
  directors: lablvs[1-2]
  # IPVS connection sync, both ways: an open SSH session survives a failover and a failback.
  sync: {network: admin, sync_id: 51}
  # Each director probes every real server's sshd 4 times a second (connected within 0.25 s,
  # 'SSH-' within 0.5 s): 2 failures in a row -> weight 0 there at once; 3 successes -> back.
  health: {interval: 0.25, timeout: 0.5, connect_timeout: 0.25, fall: 2, rise: 3}
  # Each frontend reports its 1-minute load per core every 10 s; the master scales its weight:
  # 100 % up to 0.5 per core, 10 % from 2.0 on (never 0), a change only when it moves by 0.1 or
  # more, at most one per frontend per 30 s. Hence weights of 100 below: room to scale.
  load: {every: 10, low: 0.5, high: 2.0, min_factor: 0.1, smoothing: 0.5, deadband: 0.1, min_interval: 30}
  services:
    - name: ssh
      network: wan
      vip: 10.12.0.10
      port: 22
      protocol: tcp
      scheduler: wlc
      persistence: 600
      forward: dr
      real_servers:
        - {host: labfe1, weight: 100}
        - {host: labfe2, weight: 100}
        - {host: labfe3, weight: 100}
    # Seed 000's NAT pool on a second VIP, the same frontends reached on the admin network: the
    # directors translate, the frontends send the replies back through nat_gateway (the directors'
    # VRRP address on admin, lvs_vip's other_virtual_ips) by a rule from their admin address.
    - name: ssh_nat
      network: wan
      vip: 10.12.0.9
      port: 22
      protocol: tcp
      scheduler: wlc
      persistence: 600
      forward: nat
      real_network: admin
      nat_gateway: 10.11.0.10
      real_servers:
        - {host: labfe1, weight: 100}
        - {host: labfe2, weight: 100}
        - {host: labfe3, weight: 100}
