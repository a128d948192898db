"""CRM exports: mappings, reading into one canonical model, data quality, and the simulator of a CRM."""
