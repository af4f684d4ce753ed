{%- from tpldir ~ "/map.jinja" import routed with context %}
{%- if routed %}
include:
  - policy_routing.package

policy_routing-config-policy_routing-applied:
  policy_routing.applied:
    - name: policy routing
    - require:
      - pkg: policy_routing-package-pkg-installed
{%- endif %}
