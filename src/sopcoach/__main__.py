"""``python -m sopcoach``: the ``sopcoach`` command (:func:`sopcoach.cli.main.main`)."""
import sys

from .cli.main import main

sys.exit(main())
