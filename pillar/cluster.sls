# Cluster identity, networks and the inventory (seed 001: three networks; hostnames <prefix><role><id>).
cluster:
  name: lab
  domain: lab.hpc
  prefix: lab
  hostname_pattern: '^(?P<prefix>lab)(?P<role>[a-z]+)(?P<id>[0-9]+)$'

networks:
  admin:
    cidr: 10.11.0.0/24
    vlan: 11
    description: deployment, services, salt
  wan:
    cidr: 10.12.0.0/24
    gateway: 10.12.0.254
    vlan: 12
    description: users' side; the SSH VIP lives here
  ib:
    cidr: 10.13.0.0/16
    gateway: 10.13.0.254
    description: IPoIB, the compute nodes' only data network (seed 003)

nodes:
  - nodeset: labadm1            # salt master, admin node
    role: adm
    interfaces:
      admin: {name: eth0, ip: 10.11.0.1, mac: '52:54:00:0b:00:01'}
  - nodeset: lablvs[1-2]        # LVS directors (QEMU VMs: real IPVS)
    role: lvs
    interfaces:
      admin: {name: eth0, ip: 10.11.0.11, mac: '52:54:00:0b:00:11'}
      wan: {name: eth1, ip: 10.12.0.11, mac: '52:54:00:0c:00:11'}
  - nodeset: labfe[1-3]         # login frontends behind the VIP
    role: fe
    interfaces:
      admin: {name: eth0, ip: 10.11.0.21, mac: '52:54:00:0b:00:21'}
      wan: {name: eth1, ip: 10.12.0.21, mac: '52:54:00:0c:00:21'}
      ib: {name: ib0, ip: 10.13.0.21}
  - nodeset: labnat[1-2]        # HA NAT routers (seed 003's alinat)
    role: nat
    interfaces:
      admin: {name: eth0, ip: 10.11.0.31, mac: '52:54:00:0b:00:31'}
      ib: {name: ib0, ip: 10.13.0.31}
      wan: {name: eth1, ip: 10.12.0.31, mac: '52:54:00:0c:00:31'}
  - nodeset: labcn[1-2]         # diskless compute nodes
    role: cn
    image: compute
    interfaces:
      admin: {name: eth0, ip: 10.11.0.41, mac: '52:54:00:0b:00:41'}
      ib: {name: ib0, ip: 10.13.1.1}
  - nodeset: labboot1           # DHCP/TFTP/iPXE/HTTP boot server
    role: boot
    interfaces:
      admin: {name: eth0, ip: 10.11.0.5, mac: '52:54:00:0b:00:05'}
  - nodeset: labfw1             # default router + firewall stand-in: drops what the policy forbids
    role: fw
    interfaces:
      admin: {name: eth0, ip: 10.11.0.254, mac: '52:54:00:0b:00:fe'}
      ib: {name: ib0, ip: 10.13.0.254}
      wan: {name: eth1, ip: 10.12.0.254, mac: '52:54:00:0c:00:fe'}
  - nodeset: labclient1         # a user's machine outside the cluster
    role: client
    interfaces:
      admin: {name: eth0, ip: 10.11.0.200, mac: '52:54:00:0b:00:c8'}
      wan: {name: eth1, ip: 10.12.0.200, mac: '52:54:00:0c:00:c8'}
  - nodeset: labinet1           # "the internet": reachable from compute nodes only through the NAT VIP
    role: inet
    interfaces:
      admin: {name: eth0, ip: 10.11.0.250, mac: '52:54:00:0b:00:fa'}
      wan: {name: eth1, ip: 10.12.0.250, mac: '52:54:00:0c:00:fa'}
