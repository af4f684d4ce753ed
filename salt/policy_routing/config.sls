{%- from tpldir ~ "/map.jinja" import routed, watched_interfaces with context %}
{%- if routed %}
include:
  - policy_routing.package

policy_routing-config-policy_routing-applied:
  policy_routing.applied:
    - name: policy routing
    - require:
      - pkg: policy_routing-package-pkg-installed

{#- Self-healing: the beacon fires hpc/net/link/<iface>/up at once when a routed interface comes
    back (salt/reactor/link.sls answers with policy_routing.heal on this minion). #}
policy_routing-config-beacon-present:
  beacon.present:
    - name: hpc_link
    - save: True
    - interfaces: {{ watched_interfaces | json }}
    - debounce: 0.02

{#- Group membership can change without any event here (LDAP): re-resolve and re-apply each
    minute, a no-op when nothing changed. reapply starts from what the last apply recorded, not
    from the minion's in-memory pillar (older than this highstate's): the edit stays. Run by a
    beacon inside the minion (hpc_refresh), not a Salt schedule: a scheduled job forks the
    minion every minute on every node (CPU jitter; in the lab, IB storms that met one healed
    late). The schedule of earlier versions is removed. #}
policy_routing-config-beacon-present-refresh:
  beacon.present:
    - name: hpc_refresh
    - save: True
    - function: policy_routing.reapply
    - every: 60
    - splay: 20

policy_routing-config-schedule-absent:
  schedule.absent:
    - name: hpc-policy-routing-refresh
{%- endif %}
