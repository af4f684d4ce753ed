{%- from tpldir ~ "/map.jinja" import keepalived, instances with context %}
{%- if instances %}
include:
  - keepalived.package

keepalived-config-file-notify:
  file.managed:
    - name: {{ keepalived.notify }}
    - contents: {{ salt['keepalived.notify_script']() | json }}
    - mode: '0700'
    - user: root
    - group: root
    - makedirs: True

{#- Holds the VRRP auth_pass: 0600, checked with `keepalived -t` before it replaces the old one,
    and its diff is never shown. #}
keepalived-config-file-conf:
  file.managed:
    - name: {{ keepalived.config }}
    - contents: {{ salt['keepalived.config']() | json }}
    - mode: '0600'
    - user: root
    - group: root
    - makedirs: True
    - show_changes: False
    - check_cmd: keepalived -t -f
    - require:
      - pkg: keepalived-package-pkg-installed
{%- endif %}
