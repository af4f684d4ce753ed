{%- from tpldir ~ "/map.jinja" import ipvs, director, forwards with context %}
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

{%- if forwards %}
{#- NAT: the real servers' replies pass through the director, which rewrites them to the VIP. #}
ipvs-config-file-sysctl_conf:
  file.managed:
    - name: {{ ipvs.sysctl_file }}
    - contents: |
        # Managed by Salt (hpcnet ipvs): a NAT director forwards its real servers' replies.
        net.ipv4.ip_forward = 1
    - mode: '0644'

ipvs-config-sysctl-present-ip_forward:
  sysctl.present:
    - name: net.ipv4.ip_forward
    - value: 1
    - config: {{ ipvs.sysctl_file }}
    - require:
      - file: ipvs-config-file-sysctl_conf
{%- endif %}

{#- The pillar's services only: edited in place, never flushed; other services stay. #}
ipvs-config-ipvs-table_applied:
  ipvs.table_applied:
    - name: {{ ipvs.table }}
    - require:
      - file: ipvs-config-file-modules_conf
{%- endif %}
