# SSH login pool behind a virtual IP (seeds 000 and 001): persistence keeps a client on one frontend.
lvs:
  directors: lablvs[1-2]
  # IPVS connection sync, both ways: an open SSH session survives a failover and a failback.
  sync: {network: admin, sync_id: 51}
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
      health_check: {type: tcp, interval: 2, timeout: 1, retries: 2}
