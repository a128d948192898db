"""Short-lived signed session tokens that carry a signed-in learner from one Voila page to the next.

Each Voila page (home, every lesson, the exam) runs in its own kernel, so each must learn who the
learner is. After one successful sign-in (employee id + access code, or ``JUPYTERHUB_USER``) the
app issues a token and puts it in the links between pages as ``?session=<token>``; Voila hands the
query string to the kernel (``QUERY_STRING``, read with :func:`query_param`), which checks the
token and skips the sign-in page.

Token format: ``base64url(learner id) "." expiry (Unix seconds) "." base64url(HMAC-SHA256)``. The
MAC covers the first two fields and is keyed by a random secret kept in ``SOPCOACH_HOME/secret.key``
(created with mode 0600 on first use; delete it to invalidate every token at once). A token holds
no access code and no answer key; it only says "this learner signed in, valid until then". A
forged, altered, malformed or expired token is refused (:func:`verify_token` returns ``None``) and
the page falls back to the sign-in form. Tokens live :data:`TOKEN_TTL_SECONDS` (8 hours, one
working day); like any bearer link, a token copied from the address bar works for its holder
until it expires, so learners should not share lesson links.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qs

__all__ = ["TOKEN_TTL_SECONDS", "issue_token", "load_secret", "page_query", "query_param", "verify_token"]

#: Lifetime of a session token in elapsed seconds (8 hours).
TOKEN_TTL_SECONDS = 8 * 3600
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())


def issue_token(secret: bytes, learner_id: str, now: float | None = None,
                ttl: int = TOKEN_TTL_SECONDS) -> str:
    """Return a token saying ``learner_id`` signed in, valid for ``ttl`` elapsed seconds.

    Examples
    --------
    >>> key = bytes(32)
    >>> tok = issue_token(key, "e1001", now=1_000_000)
    >>> verify_token(key, tok, now=1_000_000 + 3600)
    'e1001'
    >>> verify_token(key, tok, now=1_000_000 + TOKEN_TTL_SECONDS + 1) is None
    True
    """
    now = time.time() if now is None else now
    body = f"{_b64(learner_id.encode('utf-8'))}.{int(now) + int(ttl)}"
    return f"{body}.{_mac(secret, body)}"


def verify_token(secret: bytes, token: str | None, now: float | None = None) -> str | None:
    """Return the learner id of a valid, unexpired token, else ``None`` (never raises).

    Examples
    --------
    >>> key = bytes(32)
    >>> tok = issue_token(key, "e1001", now=0)
    >>> forged = _b64(b"boss") + tok[tok.index("."):]
    >>> verify_token(key, forged, now=1) is None, verify_token(bytes(31) + b"x", tok, now=1) is None
    (True, True)
    """
    if not token or not isinstance(token, str) or len(token) > 512:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    body = f"{parts[0]}.{parts[1]}"
    try:
        if not hmac.compare_digest(_mac(secret, body), parts[2]):
            return None
        expiry = int(parts[1])
        learner_id = _unb64(parts[0]).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    now = time.time() if now is None else now
    if now >= expiry or not learner_id:
        return None
    return learner_id


_QUERY: list[str] = []  # the page's query string, once known (a kernel serves one page)


def page_query() -> str:
    """Return the query string of the page this kernel serves (``session=...&lang=en``).

    Voila gives a kernel its page's query string as ``QUERY_STRING``. A preheated kernel runs the
    notebook before any page asks for it; ``voila.utils.get_query_string`` then waits for the
    request that takes the kernel and returns its query string. It may be asked only once per
    kernel (a second wait would never end), so the answer is kept. Outside Voila (nbval, tests)
    the variable is simply read.
    """
    if _QUERY:
        return _QUERY[0]
    qs = os.environ.get("QUERY_STRING")
    if os.environ.get("VOILA_PREHEAT") == "True":
        try:
            from voila.utils import get_query_string
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qs = get_query_string() or qs
        except Exception:  # noqa: BLE001 - no request info: behave like a page without parameters
            pass
        _QUERY.append(qs or "")
    return qs or ""


def query_param(name: str, query: str | None = None) -> str | None:
    """Return one parameter of ``query`` (default: :func:`page_query`), or ``None``.

    Examples
    --------
    >>> query_param("lang", "session=abc&lang=en"), query_param("x", "session=abc")
    ('en', None)
    """
    values = parse_qs(page_query() if query is None else query).get(name)
    return values[-1] if values else None
