"""Command line: the ``sopcoach`` command (main.py) and its sub-commands for CRM analysis, question interchange and trainers."""
