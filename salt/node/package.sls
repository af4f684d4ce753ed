{#- NFS client tools, only on hosts that mount NFS. #}
{%- from tpldir ~ "/map.jinja" import node with context %}
{%- set nfs = salt['node.mounts']() | selectattr('fstype', 'match', '^nfs') | list %}
{%- if nfs %}
node-package-pkg-installed:
  pkg.installed:
    - pkgs: {{ node.nfs_packages | json }}
{%- endif %}
