"""Command line: the ``sopcoach`` command (main.py) and its CRM, interchange and trainer sub-commands."""
