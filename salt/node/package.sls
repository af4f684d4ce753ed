{#- NFS client tools, only on hosts that mount NFS. #}
{%- from tpldir ~ "/map.jinja" import node, valid with context %}
{%- if valid %}
{%- set nfs = salt['node.mounts']() | selectattr('fstype', 'match', '^nfs') | list %}
{%- if nfs %}
node-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ node.nfs_packages | json }}
{%- endif %}
{%- endif %}
