{%- from tpldir ~ "/map.jinja" import keepalived with context %}
keepalived-clean-service-dead:
  service.dead:
    - name: {{ keepalived.service }}
    - enable: False

keepalived-clean-file-absent:
  file.absent:
    - names:
      - {{ keepalived.config }}
      - {{ keepalived.notify }}
    - require:
      - service: keepalived-clean-service-dead
