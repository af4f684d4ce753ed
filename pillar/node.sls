# Basics of every node: resolver (seed 001: fqdn_rotate + rotate + timeout:1), /etc/hosts, mounts (seed 000).
node:
  resolver:
    nameservers: [10.11.0.101, 10.11.0.102, 10.11.0.103]
    search: [lab.hpc]
    attempts: 2
    timeout: 1
  hosts_file:
    networks: [admin, wan, ib]
  mounts:
    - path: /scratch
      device: tmpfs
      fstype: tmpfs
      options: [size=64m, mode=1777]
      hosts: labcn[1-2]
