{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- from "hpc/restart.jinja" import restart_dropin %}
{%- if server %}
include:
  - diskless.config
{{ restart_dropin("diskless", "service", diskless.service) }}

diskless-service-service-running:
  service.running:
    - name: {{ diskless.service }}
    - enable: True
    - watch:
      - file: diskless-config-file-dnsmasq
    - require:
      - file: diskless-config-file-tftp_root
{%- endif %}
