{%- from tpldir ~ "/map.jinja" import keepalived, instances with context %}
{%- from "hpc/restart.jinja" import kept_alive %}
{%- if instances %}
include:
  - keepalived.config
{{ kept_alive("keepalived", "service", keepalived.service, keepalived.sig) }}

{#- A config change reloads (SIGHUP): VRRP state and the VIPs survive a reload, not a restart. #}
keepalived-service-service-running:
  service.running:
    - name: {{ keepalived.service }}
    - enable: True
    - reload: True
    - sig: {{ keepalived.sig }}
    - watch:
      - file: keepalived-config-file-conf
      - file: keepalived-config-file-notify

{#- VRRP transitions become hpc/net/vrrp/<instance>/<state> events (see _beacons/hpc_vrrp.py). #}
keepalived-service-beacon-present:
  beacon.present:
    - name: hpc_vrrp
    - save: True
    - directory: /run/hpcnet/vrrp
{%- endif %}
