{%- from tpldir ~ "/map.jinja" import frontend, enabled with context %}
{%- if enabled %}
frontend-package-pkg-installed:
  pkg.installed:
    - name: {{ frontend.package }}
{%- endif %}
