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
    from the minion's in-memory pillar (older than this highstate's): the edit stays. The splay
    (each run 1-20 s later, at random) keeps minions started together (a rack powered on, the
    lab) from forking their job in the same second every minute. #}
policy_routing-config-schedule-present:
  schedule.present:
    - name: hpc-policy-routing-refresh
    - function: policy_routing.reapply
    - seconds: 60
    - splay: 20
    - return_job: False
{%- endif %}
