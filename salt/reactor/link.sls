{#- hpc/net/link/<iface>/<up|down>, fired by a minion's hpc_link beacon.
    On `up`, re-apply policy routing on that minion only (not a highstate): policy_routing.heal
    re-reads the kernel (the claim is checked there: a host already in sync changes nothing),
    applies under a lock (duplicate or stormy events queue up and become no-ops), reads back
    and fires hpc/net/routes/restored or .../failed.
    Trusts only data['id'], which the master sets from the authenticated minion. #}
{%- set minion = data.get('id') %}
{%- if minion and tag.endswith('/up') %}
hpc-reactor-link-policy_routing-heal:
  local.policy_routing.heal:
    - tgt: {{ minion | json }}
    - kwarg:
        reason: {{ tag | json }}
{%- endif %}
