{#- hpc/lvs/health/<address>/<down|up> from a director's hpc_lvs_health beacon (signed), sent
    after that director set the weight itself. hpc_react.lvs_health proves the sender, checks it
    is a director in the master's copy of its pillar, waits a few seconds for the other
    directors' reports, and has any director that stayed silent re-probe that real server and
    apply its own verdict (ipvs.recheck). Nothing here reads data['id']. #}
hpc-reactor-lvs-hpc_react-lvs_health:
  runner.hpc_react.lvs_health:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
