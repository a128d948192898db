"""A pytest plugin for the notebook tests (``make test``): tells a lesson notebook's kernel its path.

nbval starts one kernel per notebook and passes no path to it; :func:`sopcoach.lessons.cells.facts`
needs the path to list the facts the notebook quotes. Before the first cell of a notebook runs (its
kernel starts then), this plugin sets ``JPY_SESSION_NAME`` to the notebook's path, as JupyterLab
does for its kernels. Load it with ``pytest -p sopcoach.lessons.nbval_plugin``.
"""
from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: Any) -> None:
    """Set ``JPY_SESSION_NAME`` to the path of the notebook ``item`` belongs to (nbval cells only)."""
    path = str(getattr(item, "path", ""))
    if path.endswith(".ipynb"):
        os.environ["JPY_SESSION_NAME"] = path
