{#- The gate: runs first (order 1); on a bad pillar it fails and failhard stops the whole run,
    so no other state changes anything. Every subsystem's init.sls includes this file. #}
hpc-validate-hpc-pillar_valid:
  hpc.pillar_valid:
    - name: cluster pillar
    - order: 1
    - failhard: True
