{%- from tpldir ~ "/map.jinja" import ipvs, director with context %}
{%- if director %}
include:
  - ipvs.package

{#- IPVS and the pillar's schedulers load at boot. ipvs.table_applied loads them now if they are
    not (a modprobe in the module: a cmd.run state's `unless` costs 29 s in a TCG director). #}
ipvs-config-file-modules_conf:
  file.managed:
    - name: {{ ipvs.modules_file }}
    - contents: |
        # Managed by Salt (hpcnet ipvs): IPVS and the schedulers the pillar's services use.
        {%- for module in salt['ipvs.kernel_modules']() %}
        {{ module }}
        {%- endfor %}
    - mode: '0644'

{#- The pillar's services only: edited in place, never flushed; other services stay. #}
ipvs-config-ipvs-table_applied:
  ipvs.table_applied:
    - name: {{ ipvs.table }}
    - require:
      - file: ipvs-config-file-modules_conf

{#- ipvs.sysctls: forwarding for NAT, sloppy_tcp for a failover with synced connections. After the
    table: net.ipv4.vs.* exists once ip_vs is loaded (table_applied loads it). Our own sysctl file
    keeps them across a reboot (modules-load.d loads ip_vs before systemd-sysctl runs). #}
{%- set sysctls = salt['ipvs.sysctls']() %}
{%- if sysctls %}
ipvs-config-file-sysctl_conf:
  file.managed:
    - name: {{ ipvs.sysctl_file }}
    - contents: |
        # Managed by Salt (hpcnet ipvs): forwarding for NAT services, sloppy TCP for synced failovers.
        {%- for key, value in sysctls.items() %}
        {{ key }} = {{ value }}
        {%- endfor %}
    - mode: '0644'
    - require:
      - ipvs: ipvs-config-ipvs-table_applied

{%- for key, value in sysctls.items() %}
ipvs-config-sysctl-present-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value }}
    - config: {{ ipvs.sysctl_file }}
    - require:
      - file: ipvs-config-file-sysctl_conf
{%- endfor %}
{%- endif %}
{%- endif %}
