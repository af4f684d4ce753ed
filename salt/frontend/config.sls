{%- from tpldir ~ "/map.jinja" import frontend, enabled, dr_vips, nat_return with context %}
{%- if enabled %}
include:
  - frontend.package

frontend-config-file-sshd_dropin:
  file.managed:
    - name: {{ frontend.dropin }}
    - contents: {{ salt['frontend.sshd_config']() | json }}
    - mode: '0644'
    - makedirs: True
    - require:
      - pkg: frontend-package-pkg-installed

{#- The same host keys on every frontend (seed 000): a client's known_hosts entry for the VIP holds
    whichever frontend answers. The private key comes from the pillar at run time
    (contents_pillar: never in the rendered SLS), 0600, and no diff is ever shown. #}
{%- for type in salt['frontend.host_key_types']() %}
{%- set path = salt['frontend.host_key_path'](type) %}
frontend-config-file-host_key-{{ type }}:
  file.managed:
    - name: {{ path }}
    - contents_pillar: secrets:ssh_host_keys:{{ type }}
    - mode: '0600'
    - user: root
    - group: root
    - show_changes: False

frontend-config-file-host_key_pub-{{ type }}:
  file.managed:
    - name: {{ path }}.pub
    - contents: {{ salt['frontend.host_public_key'](type) | json }}
    - mode: '0644'
{%- endfor %}

{#- The whole configuration, with the new drop-in and keys, must pass sshd -t before sshd reloads it. #}
frontend-config-cmd-sshd_test:
  cmd.run:
    - name: mkdir -p /run/sshd && sshd -t
    - onchanges:
      - file: frontend-config-file-sshd_dropin
{%- for type in salt['frontend.host_key_types']() %}
      - file: frontend-config-file-host_key-{{ type }}
{%- endfor %}
{%- endif %}

{%- if dr_vips %}
{%- set arp = salt['frontend.arp_sysctls']() %}

{#- Direct routing (seed 001): the ARP settings first, then the VIP on lo; in the other order the
    frontend could answer ARP for the VIP for a moment and take clients off the director. #}
frontend-config-file-sysctl_conf:
  file.managed:
    - name: {{ frontend.sysctl_file }}
    - contents: |
        # Managed by Salt (hpcnet frontend): a direct-routing real server never answers ARP for its VIPs.
        {%- for key, value in arp.items() %}
        {{ key }} = {{ value }}
        {%- endfor %}
    - mode: '0644'

{%- for key, value in arp.items() %}
frontend-config-sysctl-present-{{ key }}:
  sysctl.present:
    - name: {{ key }}
    - value: {{ value }}
    - config: {{ frontend.sysctl_file }}
    - require:
      - file: frontend-config-file-sysctl_conf
{%- endfor %}

frontend-config-frontend-dr_vips_applied:
  frontend.dr_vips_applied:
    - name: lo
    - require:
{%- for key in arp %}
      - sysctl: frontend-config-sysctl-present-{{ key }}
{%- endfor %}
{%- endif %}

{%- if nat_return %}

{#- NAT (seed 000): the directors hand this host the VIP's clients at its real_network address; the
    replies from that address go back through the directors' VRRP address (nat_gateway), which
    translates them back to the VIP. A rule and a table of ours; nothing else is touched. #}
frontend-config-frontend-nat_return_applied:
  frontend.nat_return_applied:
    - name: {{ nat_return | join(',') }}
{%- endif %}
