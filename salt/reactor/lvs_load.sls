{#- hpc/lvs/load/<minion> from a frontend's hpc_frontend_load beacon (signed): its load per core.
    hpc_react.lvs_load proves the sender, checks it is a real server of the pool in the master's
    copy of its pillar, and asks the directors to change its weight only when the lvs.load policy
    says so (smoothing, dead-band, rate limit). Nothing here reads data['id']. #}
hpc-reactor-lvs_load-hpc_react-lvs_load:
  runner.hpc_react.lvs_load:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
