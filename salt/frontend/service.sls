{%- from tpldir ~ "/map.jinja" import frontend, enabled with context %}
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
{%- endif %}
