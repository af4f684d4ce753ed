{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- from "hpc/restart.jinja" import kept_alive %}
{%- if server %}
include:
  - diskless.config
{{ kept_alive("diskless", "service", diskless.service, diskless.sig) }}

diskless-service-service-running:
  service.running:
    - name: {{ diskless.service }}
    - enable: True
    - watch:
      - file: diskless-config-file-dnsmasq
    - require:
      - file: diskless-config-file-tftp_root
{%- endif %}
