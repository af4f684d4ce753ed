# SSH login pool behind a virtual IP (seeds 000 and 001): persistence keeps a client on one frontend.
lvs:
  directors: lablvs[1-2]
  # IPVS connection sync, both ways: an open SSH session survives a failover and a failback.
  sync: {network: admin, sync_id: 51}
  # Each director probes every real server's sshd 4 times a second (connected within 0.25 s,
  # 'SSH-' within 0.5 s): 2 failures in a row -> weight 0 there at once; 3 successes -> back.
  health: {interval: 0.25, timeout: 0.5, connect_timeout: 0.25, fall: 2, rise: 3}
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
        - {host: labfe1, weight: 1}
        - {host: labfe2, weight: 1}
        - {host: labfe3, weight: 1}
