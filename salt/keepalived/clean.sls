{%- from tpldir ~ "/map.jinja" import keepalived with context %}
{%- from "hpc/restart.jinja" import not_kept_alive %}
{#- The daemon beacon goes first: else it would see keepalived stop and have it started again. #}
{{ not_kept_alive("keepalived", keepalived.service) }}

keepalived-clean-service-dead:
  service.dead:
    - name: {{ keepalived.service }}
    - enable: False
    - require:
      - beacon: keepalived-clean-beacon-daemon

keepalived-clean-file-absent:
  file.absent:
    - names:
      - {{ keepalived.config }}
      - {{ keepalived.notify }}
    - require:
      - service: keepalived-clean-service-dead
