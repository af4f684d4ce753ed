{%- from tpldir ~ "/map.jinja" import frontend with context %}
frontend-clean-file-absent:
  file.absent:
    - name: {{ frontend.dropin }}
