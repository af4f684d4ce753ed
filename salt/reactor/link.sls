{#- hpc/net/link/<iface>/<up|down>, fired by a minion's hpc_link beacon (signed with its key).
    hpc_react.link proves the sender (hpc_signed) and, on `up`, re-applies policy routing on that
    minion only (policy_routing.heal, from its last applied record; it fires
    hpc/net/routes/restored or .../failed). The routes are usually back already: the beacon's
    local heal put them back. Link-ups arriving together (an IB switch reboot) become one job.
    Nothing here reads data['id']: the batch form lets a minion write any id there. #}
hpc-reactor-link-hpc_react-link:
  runner.hpc_react.link:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
