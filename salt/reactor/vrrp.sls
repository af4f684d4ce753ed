{#- hpc/net/vrrp/<instance>/<MASTER|BACKUP|FAULT|STOP> from the hpc_vrrp beacon (signed).
    Recorded in the master's log once the sender is proven; no action (keepalived already moved
    the VIP). #}
hpc-reactor-vrrp-hpc_react-vrrp:
  runner.hpc_react.vrrp:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
