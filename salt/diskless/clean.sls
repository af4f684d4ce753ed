{%- from tpldir ~ "/map.jinja" import diskless with context %}
{%- from "hpc/restart.jinja" import not_kept_alive %}
{{ not_kept_alive("diskless", diskless.service) }}

diskless-clean-file-absent:
  file.absent:
    - name: {{ diskless.config }}
