{#- Removes what this formula made and nothing else: our nft table (other tables stay), our sysctl
    and modules-load files (running values and modules are left as they are) and our
    conntrackd.conf, after stopping the daemon that reads it (the init script needs the file). A
    conntrackd.conf without our header is Debian's or someone else's: it and its daemon are left
    alone. Works whatever the pillar says. #}
{%- from tpldir ~ "/map.jinja" import natrouter with context %}
{%- from "hpc/restart.jinja" import not_kept_alive %}
{{ not_kept_alive("natrouter", natrouter.conntrackd.service) }}

{%- set ours = "grep -qs '^# Managed by Salt (hpcnet natrouter)' " ~ natrouter.conntrackd.config %}
natrouter-clean-natrouter-nft_absent:
  natrouter.nft_absent:
    - name: {{ natrouter.table }}

natrouter-clean-file-absent-sysctl:
  file.absent:
    - name: {{ natrouter.sysctl_file }}

natrouter-clean-file-absent-modules:
  file.absent:
    - name: {{ natrouter.modules_file }}

natrouter-clean-service-dead:
  service.dead:
    - name: {{ natrouter.conntrackd.service }}
    - enable: False
    - sig: {{ natrouter.conntrackd.sig }}
    - onlyif: {{ ours | json }}
    - require:
      - beacon: natrouter-clean-beacon-daemon

natrouter-clean-file-absent-conntrackd:
  file.absent:
    - name: {{ natrouter.conntrackd.config }}
    - onlyif: {{ ours | json }}
    - require:
      - service: natrouter-clean-service-dead
