{%- from tpldir ~ "/map.jinja" import keepalived, instances with context %}
{%- if instances %}
keepalived-package-pkg-installed:
  pkg.installed:
    - name: {{ keepalived.package }}
{%- endif %}
