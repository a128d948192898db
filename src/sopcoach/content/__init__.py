"""Content: YAML loading with line marks, the playbook, the question banks and blueprint, the business calendar."""
