{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- if server %}
include:
  - diskless.config

diskless-service-service-running:
  service.running:
    - name: {{ diskless.service }}
    - enable: True
    - watch:
      - file: diskless-config-file-dnsmasq
    - require:
      - file: diskless-config-file-tftp_root
{%- endif %}
