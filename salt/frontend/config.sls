{%- from tpldir ~ "/map.jinja" import frontend, enabled with context %}
{%- if enabled %}
include:
  - frontend.package

frontend-config-file-sshd_dropin:
  file.managed:
    - name: {{ frontend.dropin }}
    - contents: {{ salt['frontend.sshd_config']() | json }}
    - mode: '0644'
    - makedirs: True
    - require:
      - pkg: frontend-package-pkg-installed

{#- The whole configuration, with the new drop-in, must pass sshd -t before sshd reloads it. #}
frontend-config-cmd-sshd_test:
  cmd.run:
    - name: mkdir -p /run/sshd && sshd -t
    - onchanges:
      - file: frontend-config-file-sshd_dropin
{%- endif %}
