{#- salt/auth from Salt's own master (every minion authentication). Only a key Salt did not
    accept that came with a boot grain is for diskless.auth: a registered diskless node's new key
    (accepted by its own name and boot MAC), or a node that booted again (its old key replaced
    once the old key's holder is silent). Everything else renders nothing: an authentication
    costs the master no runner. diskless.auth acts only on the key Salt itself holds. #}
{%- if data.get('act') in ('pend', 'denied') and data.get('autosign_grains') %}
hpc-reactor-auth-diskless-auth:
  runner.diskless.auth:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
{%- endif %}
