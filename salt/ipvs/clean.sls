{#- Removes what this formula made and nothing else: the refresh and health beacons first (or
    they would put the table or a weight back), then every IPVS service we own (services made by
    hand stay), then our modules-load and sysctl files (loaded modules and running values are
    left as they are). Works whatever the pillar says. #}
{%- from tpldir ~ "/map.jinja" import ipvs with context %}
ipvs-clean-beacon-absent-refresh:
  beacon.absent:
    - name: hpc_refresh_ipvs
    - save: True

ipvs-clean-beacon-absent-health:
  beacon.absent:
    - name: hpc_lvs_health
    - save: True

ipvs-clean-ipvs-table_absent:
  ipvs.table_absent:
    - name: {{ ipvs.table }}
    - require:
      - beacon: ipvs-clean-beacon-absent-refresh
      - beacon: ipvs-clean-beacon-absent-health

ipvs-clean-file-absent-modules_conf:
  file.absent:
    - name: {{ ipvs.modules_file }}

ipvs-clean-file-absent-sysctl_conf:
  file.absent:
    - name: {{ ipvs.sysctl_file }}
