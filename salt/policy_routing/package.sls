{%- from tpldir ~ "/map.jinja" import routed with context %}
{%- if routed %}
policy_routing-package-pkg-installed:
  pkg.installed:
    - pkgs: [nftables, iproute2]
{%- endif %}
