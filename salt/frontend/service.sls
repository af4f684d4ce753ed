{%- from tpldir ~ "/map.jinja" import frontend, enabled, dr_vips, nat_return with context %}
{%- if enabled %}
include:
  - frontend.config

{#- sshd needs its privilege separation directory; without systemd nobody else creates it. #}
frontend-service-file-run_sshd:
  file.directory:
    - name: /run/sshd
    - mode: '0755'

{#- reload: open sessions keep running while the new settings apply to new ones. #}
frontend-service-service-running:
  service.running:
    - name: {{ frontend.service }}
    - enable: True
    - reload: True
    - require:
      - file: frontend-service-file-run_sshd
      - cmd: frontend-config-cmd-sshd_test
    - watch:
      - file: frontend-config-file-sshd_dropin
{%- for type in salt['frontend.host_key_types']() %}
      - file: frontend-config-file-host_key-{{ type }}
{%- endfor %}
{%- endif %}

{%- if dr_vips or nat_return %}
{%- if not enabled %}
include:
  - frontend.config
{%- endif %}

{#- A reboot empties lo and the NAT return table: the recorded VIPs and routes come back within
    seconds of a minion start, and every minute after (hpc_refresh, inside the minion: no forked job). #}
frontend-service-beacon-present-refresh:
  beacon.present:
    - name: hpc_refresh_frontend
    - save: True
    - beacon_module: hpc_refresh
    - function: frontend.reapply
    - every: {{ frontend.refresh.every }}
    - splay: {{ frontend.refresh.splay }}
    - first: {{ frontend.refresh.first }}
    - require:
{%- if dr_vips %}
      - frontend: frontend-config-frontend-dr_vips_applied
{%- endif %}
{%- if nat_return %}
      - frontend: frontend-config-frontend-nat_return_applied
{%- endif %}
{%- endif %}

{#- The frontend's load for the pool's weights: a signed hpc/lvs/load/<id> every `lvs.load.every`
    seconds when it moved (or a minute passed); the master decides the weight (hpc_react.lvs_load). #}
{%- set load = salt['frontend.load_settings']() %}
{%- if load.enabled %}
frontend-service-beacon-present-load:
  beacon.present:
    - name: hpc_frontend_load
    - save: True
    - every: {{ load.every }}
{%- elif load.real_server %}
{#- lvs.load.enabled false: no more reports (the directors use the pillar's weights then). #}
frontend-service-beacon-absent-load:
  beacon.absent:
    - name: hpc_frontend_load
    - save: True
{%- endif %}
