{#- Removes what policy routing owns (our tables' rules and routes, our rt_tables file, our nft
    table) through policy_routing.clean; test=True reports what it would remove. #}
policy_routing-clean-module-run:
  module.run:
    - policy_routing.clean:
      - test: {{ opts['test'] }}
