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

{#- Each director probes the pool's real servers several times a second (lvs.health) and sets a
    dead one's weight to 0 in its own table at once; the master has both re-probe and agree. #}
{%- set health = salt['ipvs.health_settings']() %}
ipvs-service-beacon-present-health:
  beacon.present:
    - name: hpc_lvs_health
    - save: True
    - interval: {{ health.interval }}
    - probe_timeout: {{ health.timeout }}  {#- not `timeout`: beacon.present's own wait #}
    - connect_timeout: {{ health.connect_timeout }}
    - fall: {{ health.fall }}
    - rise: {{ health.rise }}
    - require:
      - ipvs: ipvs-config-ipvs-table_applied
{%- endif %}
