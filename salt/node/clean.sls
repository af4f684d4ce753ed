{#- Undo the node formula's mounts (fstab entries and mounted filesystems). resolv.conf and
    /etc/hosts are left in place: a host without them is worse off than with a stale copy. #}
{%- from tpldir ~ "/map.jinja" import valid with context %}
{%- if valid %}
{%- for m in salt['node.mounts']() %}
node-clean-mount-unmounted-{{ m.path }}:
  mount.unmounted:
    - name: {{ m.path }}
    - device: {{ m.device }}
    - persist: True
{%- endfor %}
{%- endif %}
