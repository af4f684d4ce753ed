# VRRPv2 authentication of the directors' instance. Assigned to the directors only (see top.sls):
# no other host's pillar holds it. Keep real secrets in an encrypted pillar (gpg renderer).
secrets:
  keepalived:
    lvs_vip: lab-lvs1
