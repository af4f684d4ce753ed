{%- from tpldir ~ "/map.jinja" import diskless with context %}
diskless-clean-file-absent:
  file.absent:
    - name: {{ diskless.config }}
