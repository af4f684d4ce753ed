{#- Removes what this formula made and nothing else: the refresh beacon first (or it would put the
    VIPs back), our VIPs on lo (other addresses stay), our NAT return rule and table, our sysctl
    file (running values are left as they are) and the sshd drop-in. Works whatever the pillar says. #}
{%- from tpldir ~ "/map.jinja" import frontend with context %}
frontend-clean-beacon-absent-refresh:
  beacon.absent:
    - name: hpc_refresh_frontend
    - save: True

frontend-clean-beacon-absent-load:
  beacon.absent:
    - name: hpc_frontend_load
    - save: True

frontend-clean-frontend-dr_vips_absent:
  frontend.dr_vips_absent:
    - name: lo
    - require:
      - beacon: frontend-clean-beacon-absent-refresh

frontend-clean-frontend-nat_return_absent:
  frontend.nat_return_absent:
    - name: lvs_nat
    - require:
      - beacon: frontend-clean-beacon-absent-refresh

frontend-clean-file-absent-sysctl_conf:
  file.absent:
    - name: {{ frontend.sysctl_file }}

frontend-clean-file-absent:
  file.absent:
    - name: {{ frontend.dropin }}
