{#- hpc/daemon/<service>/<dead|alive> from the hpc_daemons beacon (signed). On `dead`,
    hpc_react.daemon proves the sender and starts the service again on that minion only. #}
hpc-reactor-daemon-hpc_react-daemon:
  runner.hpc_react.daemon:
    - args:
      - tag: {{ tag | json }}
      - data: {{ data | json }}
