{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- if server %}
diskless-package-pkg-installed:
  pkg.installed:
    - name: {{ diskless.package }}
{%- endif %}
