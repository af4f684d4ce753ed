{#- Diskless images, built on the boot server: explicit, never part of a highstate (a cold build
    downloads a Debian system: a minute or more). `salt-call state.apply diskless.image` on the
    boot server, or `salt BOOTSERVER state.apply diskless.image` from the master. #}
{%- from tpldir ~ "/map.jinja" import diskless, server with context %}
{%- if server %}
diskless-image-pkg-installed:
  pkg.installed:
    - pkgs: {{ diskless.build_packages | json }}

{#- The built-in phase scripts (a site's own, under diskless.site_scripts, replace them by name)
    and the files the base gets before its packages (the initramfs's boot script). #}
{%- for part in ('phases', 'base') %}

diskless-image-file-{{ part }}:
  file.recurse:
    - name: {{ diskless.builtin }}/{{ part }}
    - source: salt://diskless/{{ part }}
    - clean: True
    - file_mode: keep
    - dir_mode: '0755'
    - makedirs: True
{%- endfor %}

{%- for image in salt['pillar.get']('diskless:images', []) %}

diskless-image-diskless-image_built-{{ image.name }}:
  diskless.image_built:
    - name: {{ image.name }}
    - require:
      - pkg: diskless-image-pkg-installed
      - file: diskless-image-file-phases
      - file: diskless-image-file-base
{%- endfor %}
{%- endif %}
