"""The learner and trainer servers behind JupyterHub: the Hub's OAuth at the door.

Imported only when a server runs under JupyterHub (``sopcoach serve --hub``); it needs the
``hub`` extra (``jupyterhub``).

**The learner server as a user's server.** The Hub's spawner runs ``sopcoach serve --hub`` as the
user's single-user server; the Hub passes, in the environment, who the server belongs to
(``JUPYTERHUB_USER``), where to listen (``JUPYTERHUB_SERVICE_URL``), its path prefix
(``JUPYTERHUB_SERVICE_PREFIX``, e.g. ``/user/alice/``) and its OAuth client (``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_CLIENT_ID``, ``JUPYTERHUB_OAUTH_CALLBACK_URL``, ``JUPYTERHUB_OAUTH_ACCESS_SCOPES``).
:class:`HubLearnerIdentity` is jupyterhub's own identity provider for single-user servers
(``jupyterhub.singleuser.extension.JupyterHubIdentityProvider``: Hub OAuth, its cookie and XSRF
handling) narrowed to the owner: a request comes in only with a Hub login that holds the access
scope of this server *and* is the server's owner (an administrator granted ``access:servers``
gets 403, since every answer given on the page is recorded as the owner's). It guards every
route, the kernel websocket included (the learner server checks the user before a websocket
is upgraded). There is no sign-in page: an anonymous visitor is sent to the Hub's login.

**The trainer server as a Hub service.** ``sopcoach serve --trainer --hub`` runs as a service
the Hub starts (``c.JupyterHub.services``); :class:`TrainerHubServer` is the trainer server's
Voila application with :class:`HubTrainerIdentity` (the same OAuth; any Hub user holding the
service's access scope, ``access:services!service=<name>``, which a role gives the ``trainers``
group) and the OAuth callback route. No token.

A server started this way keeps no secret key on disk: its cookies are signed with a key made at
start, so after a restart the browser silently goes through the Hub's OAuth again.

``deploy/jupyterhub_config.py`` wires both into a Hub; ``docs/deploy.md`` walks through it.
"""
from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth import User
from jupyter_server.utils import url_path_join
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider, JupyterHubLogoutHandler, JupyterHubOAuthCallbackHandler
from tornado import web
from .trainer import TrainerServer

from ..errors import ConfigError
from .launch import quiet_traitlets_notices

__all__ = ["HubLearnerIdentity", "HubServer", "HubTrainerIdentity", "TrainerHubServer", "hub_server", "main"]


@dataclass(frozen=True)
class HubServer:
    """Where the Hub told a server to listen, and under which prefix.

    Attributes
    ----------
    host : str
        Address to bind (``127.0.0.1`` for a local spawner, ``0.0.0.0`` in a container).
    port : int
    prefix : str
        The server's path prefix, starting and ending with ``/`` (``/user/alice/``,
        ``/services/sopcoach-trainer/``).
    user : str
        The Hub user the server belongs to (``""`` for a service).
    public_host : str
        The host name of the Hub's public URL (``JUPYTERHUB_PUBLIC_URL``, set when the Hub's
        ``public_url`` is configured), ``""`` when the Hub did not say: browsers' requests carry it
        in their ``Host`` header, so the server must answer to it.
    """

    host: str
    port: int
    prefix: str
    user: str
    public_host: str = ""


_NEEDED = ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL")


def hub_server(env: dict[str, str] | None = None, *, service: bool = False) -> HubServer:
    """Read the Hub's instructions for a server (or, with ``service``, a Hub service) from ``env``.

    Parameters
    ----------
    env : dict, optional
        The environment (default ``os.environ``).
    service : bool, default False
        A Hub service (the trainer server) rather than a user's server: no ``JUPYTERHUB_USER``.

    Returns
    -------
    HubServer

    Raises
    ------
    ConfigError
        When a variable the Hub sets is missing (the server was not started by a Hub) or the
        service URL has no port.

    Examples
    --------
    >>> hub_server({"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:51234/user/ann/", "JUPYTERHUB_USER": "ann",
    ...             "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/", "JUPYTERHUB_API_TOKEN": "t",
    ...             "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"})
    HubServer(host='127.0.0.1', port=51234, prefix='/user/ann/', user='ann', public_host='')
    """
    env = dict(os.environ if env is None else env)
    needed = _NEEDED if service else (*_NEEDED, "JUPYTERHUB_USER")
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise ConfigError(f"--hub: {', '.join(missing)} not set; this server must be started by JupyterHub "
                          "(see docs/deploy.md)")
    url = urlparse(env["JUPYTERHUB_SERVICE_URL"])
    if not url.hostname or not url.port:
        raise ConfigError(f"--hub: JUPYTERHUB_SERVICE_URL has no host and port: {env['JUPYTERHUB_SERVICE_URL']!r}")
    prefix = env["JUPYTERHUB_SERVICE_PREFIX"]
    if not prefix.endswith("/"):
        prefix += "/"
    public = urlparse(env.get("JUPYTERHUB_PUBLIC_URL") or "").hostname or ""
    return HubServer(host=url.hostname, port=url.port, prefix=prefix, user="" if service else env["JUPYTERHUB_USER"],
                     public_host=public)


class _HubIdentity(JupyterHubIdentityProvider):
    """jupyterhub's single-user identity provider, as Voila builds identity providers."""

    def __init__(self, **kwargs: Any):
        kwargs.pop("token", None)  # Voila passes its token; behind the Hub the Hub's OAuth replaces it
        super().__init__(**kwargs)

    @property
    def login_available(self) -> bool:
        return False

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        return True

    def get_handlers(self) -> list:
        """The OAuth callback and ``/logout`` (on to the Hub's logout)."""
        return [("/logout", JupyterHubLogoutHandler),
                ("/oauth_callback", JupyterHubOAuthCallbackHandler, {"hub_auth": self.hub_auth})]


def _refuse(handler: web.RequestHandler, message: str) -> None:
    """Make the handler's next redirect to the login page a 403 instead (as jupyterhub does for a
    signed-in user without access), so a signed-in stranger is not sent round the OAuth loop."""
    def raise_403(*_args: Any, **_kwargs: Any) -> None:
        raise web.HTTPError(403, message)
    handler.redirect = raise_403  # type: ignore[method-assign]


class HubLearnerIdentity(_HubIdentity):
    """The learner server's door behind JupyterHub: the server's owner only, through the Hub's OAuth.

    Offers what :class:`sopcoach.web.server.LearnerServer` asks of its identity provider:
    ``hub_user`` (the owner, from ``JUPYTERHUB_USER``), ``records`` and :meth:`session_hash`.
    """

    def __init__(self, **kwargs: Any):
        records = kwargs.pop("records", None)
        super().__init__(**kwargs)
        self.records = records
        self.hub_user: str = os.environ["JUPYTERHUB_USER"]
        #: The owner's learner id in the records (:meth:`sopcoach.records.store.Records.hub_learner`),
        #: set by the server once it has its records; the Hub user name until then.
        self.learner_id: str = self.hub_user

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        """Return the owner for a request carrying the owner's Hub login with this server's access
        scope; ``None`` otherwise (anonymous: on to the Hub's login; anybody else: 403)."""
        if hasattr(handler, "_sopcoach_user"):
            return handler._sopcoach_user
        user = await super().get_user(handler)
        if user is not None and user.username != self.hub_user:
            self.log.warning("Hub user %s refused at the server of %s", user.username, self.hub_user)
            _refuse(handler, "this learning centre belongs to another learner")
            user = None
        elif user is not None:
            user.username = self.learner_id  # the Hub's lowercased name -> the enrolled id (Records.hub_learner)
        handler._sopcoach_user = user  # type: ignore[attr-defined]
        return user

    def session_hash(self, handler: web.RequestHandler) -> str:
        """The page binding's session: always ``hub`` (the Hub's login is the session)."""
        return "hub"

    def forget(self, token: str) -> None:
        """Nothing is cached per session here."""


class HubTrainerIdentity(_HubIdentity):
    """The trainer server's door behind JupyterHub: any Hub user holding the service's access scope."""


class TrainerHubServer(TrainerServer):
    """The trainer server as a JupyterHub service: Voila with the Hub's OAuth instead of a token."""

    name = "sopcoach-trainer-server"

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        self.identity_provider_class = HubTrainerIdentity
        self.cookie_secret = secrets.token_bytes(32)

    def init_handlers(self) -> list:
        own = [(url_path_join(self.server_url, path), *rest) for path, *rest in self.identity_provider.get_handlers()]
        return own + super().init_handlers()


def main(argv: list[str] | None = None) -> None:
    """Run the trainer server as a Hub service (``python -m sopcoach.web.hub ROOT [voila options]``)."""
    quiet_traitlets_notices()
    TrainerHubServer.launch_instance(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
