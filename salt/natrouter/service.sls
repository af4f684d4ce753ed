{%- from tpldir ~ "/map.jinja" import natrouter, router, conntrackd_conf with context %}
{%- from "hpc/restart.jinja" import kept_alive %}
{%- if router and conntrackd_conf %}
include:
  - natrouter.config
{{ kept_alive("natrouter", "service", natrouter.conntrackd.service, natrouter.conntrackd.sig) }}

{#- conntrackd has no reload: a config change restarts it. `sig` finds the daemon where the init
    script has no status; `init_delay`: `conntrackd -d` returns before it may fail on its config. #}
natrouter-service-service-running:
  service.running:
    - name: {{ natrouter.conntrackd.service }}
    - enable: True
    - sig: {{ natrouter.conntrackd.sig }}
    - init_delay: 1
    - watch:
      - file: natrouter-config-file-conntrackd_conf
{%- endif %}
