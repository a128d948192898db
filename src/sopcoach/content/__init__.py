"""Content: YAML loading with line marks, the playbook, the business calendar, question banks, blueprint, check."""
