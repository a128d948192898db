"""CRM exports: the mappings, reading an export into one canonical model, data quality, the simulator."""
