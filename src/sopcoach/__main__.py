"""``python -m sopcoach``: the ``sopcoach`` command (:func:`sopcoach.cli.main.main`)."""
import sys

from .cli.main import main

if __name__ == "__main__":  # importing the module (documentation, module walks) runs nothing
    sys.exit(main())
