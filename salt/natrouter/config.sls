{%- from tpldir ~ "/map.jinja" import natrouter, router, conntrackd_conf with context %}
{%- if router %}
include:
  - natrouter.package

{#- Our own file in /etc/sysctl.d keeps forwarding on after a reboot (seed 003's 10-alinat.conf);
    sysctl.present sets the running value and finds it already persisted there. With conntrack
    sync, a net.netfilter sysctl too: its module is loaded now and at boot (modules-load.d runs
    before systemd-sysctl), or the key does not exist yet. #}
{%- set modules_conf = salt['natrouter.modules_conf']() %}
{%- if modules_conf %}
natrouter-config-file-modules_conf:
  file.managed:
    - name: {{ natrouter.modules_file }}
    - contents: {{ modules_conf | json }}
    - mode: '0644'

{#- /sys/module, not lsmod: some kernels (this lab's host among them) have no /proc/modules. #}
natrouter-config-cmd-run-modprobe-nf_conntrack:
  cmd.run:
    - name: modprobe nf_conntrack
    - unless: test -d /sys/module/nf_conntrack
    - require:
      - file: natrouter-config-file-modules_conf
{%- endif %}

natrouter-config-file-sysctl_conf:
  file.managed:
    - name: {{ natrouter.sysctl_file }}
    - contents: {{ salt['natrouter.sysctl_conf']() | json }}
    - mode: '0644'

{%- for key, value in salt['natrouter.sysctls']().items() %}
natrouter-config-sysctl-present-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value }}
    - config: {{ natrouter.sysctl_file }}
    - require:
      - file: natrouter-config-file-sysctl_conf
{%- if modules_conf %}
      - cmd: natrouter-config-cmd-run-modprobe-nf_conntrack
{%- endif %}
{%- endfor %}

{#- Our table only, replaced whole in one nft transaction when it differs; never a flush. #}
natrouter-config-natrouter-nft_applied:
  natrouter.nft_applied:
    - name: {{ natrouter.table }}
    - require:
      - pkg: natrouter-package-pkg-installed

{%- if conntrackd_conf %}
natrouter-config-file-conntrackd_conf:
  file.managed:
    - name: {{ natrouter.conntrackd.config }}
    - contents: {{ conntrackd_conf | json }}
    - mode: '0644'
    - makedirs: True
    - require:
      - pkg: natrouter-package-pkg-installed
{%- endif %}
{%- endif %}
