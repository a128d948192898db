"""Authoring: the round-trip YAML writer (lock, backup, history), the playbook editor engine, versions."""
