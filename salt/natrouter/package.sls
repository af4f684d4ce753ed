{%- from tpldir ~ "/map.jinja" import natrouter, router with context %}
{%- if router %}
natrouter-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ natrouter.packages | json }}
{%- endif %}
