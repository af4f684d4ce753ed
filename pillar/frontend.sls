# Login frontends (seeds 000, 001): sshd keepalive, one set of host keys, VIP on lo for DR mode.
frontend:
  hosts: labfe[1-3]
  lvs_service: ssh
  client_alive_interval: 5
  client_alive_count_max: 3
  shared_host_keys: true
