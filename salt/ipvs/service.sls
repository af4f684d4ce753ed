{%- from tpldir ~ "/map.jinja" import ipvs, director with context %}
{%- if director %}
include:
  - ipvs.config

{#- What keeps the table: the recorded table re-applied by a beacon inside the minion
    (hpc_refresh), within seconds of a minion start (a rebooted director's table is empty) and
    every minute after (a table flushed by hand). No Salt schedule: no fork per run. #}
ipvs-service-beacon-present-refresh:
  beacon.present:
    - name: hpc_refresh_ipvs
    - save: True
    - beacon_module: hpc_refresh
    - function: ipvs.reapply
    - every: {{ ipvs.refresh.every }}
    - splay: {{ ipvs.refresh.splay }}
    - first: {{ ipvs.refresh.first }}
    - require:
      - ipvs: ipvs-config-ipvs-table_applied
{%- endif %}
