{#- hpc/net/vrrp/<instance>/<MASTER|BACKUP|FAULT|STOP> from keepalived's notify hook.
    Recorded in the master's event log and log file; no action yet (keepalived already moved the
    VIP). Trusts only data['id']. #}
{%- set minion = data.get('id') %}
{%- if minion %}
hpc-reactor-vrrp-log:
  runner.salt.cmd:
    - args:
      - fun: log.info
      - message: {{ ("VRRP " ~ tag ~ " on " ~ minion) | json }}
{%- endif %}
