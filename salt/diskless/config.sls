{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- if server %}
include:
  - diskless.package

diskless-config-file-tftp_root:
  file.directory:
    - name: {{ diskless.tftp_root }}
    - mode: '0755'
    - makedirs: True

{#- dnsmasq --test checks the whole configuration, the new file included, before it is kept. #}
diskless-config-file-dnsmasq:
  file.managed:
    - name: {{ diskless.config }}
    - contents: {{ salt['diskless.dnsmasq_config']() | json }}
    - mode: '0644'
    - makedirs: True
    - check_cmd: dnsmasq --test -C
    - require:
      - pkg: diskless-package-pkg-installed
{%- endif %}
