"""The installation's secret key, which signs the learner server's session cookies.

The key is 32 random bytes kept in ``SOPCOACH_HOME/secret.key`` (created with mode 0600 on first
use). Deleting it ends every signed-in session at the next server start (cookies signed with the
old key are refused). Sessions themselves live in the records store (:mod:`sopcoach.web.identity`).
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

__all__ = ["load_secret"]

SECRET_FILE = "secret.key"


def load_secret(home: Path | str) -> bytes:
    """Return the installation's token secret, creating ``home/secret.key`` (mode 0600) if needed.

    Parameters
    ----------
    home : path-like
        The data folder (``SOPCOACH_HOME``).

    Returns
    -------
    bytes
        32 random bytes, the same for every kernel of the installation.
    """
    path = Path(home) / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    for _ in range(50):  # another kernel may be writing it right now
        text = path.read_text(encoding="ascii").strip()
        if len(text) == 64:
            return bytes.fromhex(text)
        time.sleep(0.02)
    raise ValueError(f"{path} is not a 64-digit hex secret; delete it to have a new one made")
