{#- The boot server's HTTP side: lighttpd serves diskless.store under /hpcnet/ (images, the iPXE
    boot script, each node's menu), TFTP hands iPXE to firmware whose PXE is not iPXE. Part of
    the highstate (diskless/init.sls). #}
{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- if server %}
include:
  - diskless.config

diskless-boot-pkg-installed:
  pkg.installed:
    - pkgs: {{ diskless.boot_packages | json }}

{%- for name, source in diskless.ipxe_files.items() %}

diskless-boot-file-tftp-{{ name }}:
  file.managed:
    - name: {{ diskless.tftp_root }}/{{ name }}
    - source: file://{{ source }}
    - mode: '0644'
    - require:
      - pkg: diskless-boot-pkg-installed
      - file: diskless-config-file-tftp_root
{%- endfor %}

diskless-boot-file-boot_script:
  file.managed:
    - name: {{ diskless.store }}/boot.ipxe
    - contents: {{ salt['diskless.boot_script']() | json }}
    - mode: '0644'
    - makedirs: True

diskless-boot-diskless-menus_applied:
  diskless.menus_applied:
    - name: menus

diskless-boot-file-lighttpd:
  file.managed:
    - name: {{ diskless.http_config }}
    - contents: |
        # Managed by Salt (hpcnet diskless): diskless.store over HTTP, read-only (lighttpd lists
        # no directory unless mod_dirlisting is loaded: it is not by default).
        alias.url += ( "/hpcnet/" => "{{ diskless.store }}/" )
    - mode: '0644'
    - require:
      - pkg: diskless-boot-pkg-installed

diskless-boot-service-running:
  service.running:
    - name: {{ diskless.http_service }}
    - enable: True
    - watch:
      - file: diskless-boot-file-lighttpd
{%- endif %}
