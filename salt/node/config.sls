{%- from tpldir ~ "/map.jinja" import node, valid with context %}
{%- if valid %}
{%- set resolv = salt['node.resolv_conf']() %}
{%- if resolv %}
{#- Nameservers rotated per host by its FQDN (stable across runs), options rotate timeout:1 (seed 001). #}
node-config-file-resolv_conf:
  file.managed:
    - name: {{ node.resolv_conf }}
    - contents: {{ resolv | json }}
    - mode: '0644'
    - follow_symlinks: False
{%- endif %}

node-config-file-hosts:
  file.managed:
    - name: {{ node.hosts }}
    - contents: {{ salt['node.hosts_file']() | json }}
    - mode: '0644'

{%- for m in salt['node.mounts']() %}
{%-   if m.mount %}
node-config-mount-mounted-{{ m.path }}:
  mount.mounted:
    - name: {{ m.path }}
    - device: {{ m.device }}
    - fstype: {{ m.fstype }}
    - opts: {{ m.options | json }}
    - mkmnt: True
    - persist: True
{%-   else %}
node-config-mount-fstab_present-{{ m.path }}:
  mount.fstab_present:
    - name: {{ m.device }}
    - fs_file: {{ m.path }}
    - fs_vfstype: {{ m.fstype }}
    - fs_mntops: {{ m.options | json }}
{%-   endif %}
{%- endfor %}
{%- endif %}
