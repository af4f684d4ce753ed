{%- from tpldir ~ "/map.jinja" import ipvs, director with context %}
{%- if director %}
ipvs-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ ipvs.packages | json }}
{%- endif %}
