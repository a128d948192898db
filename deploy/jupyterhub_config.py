"""JupyterHub for sopcoach on one machine: ``jupyterhub -f deploy/jupyterhub_config.py`` (docs/deploy.md).

What a Hub user reaches:

- **Their own server is the learner app and nothing else.** The spawner runs ``sopcoach serve --hub``
  (the learner server, sopcoach.web.server) in place of JupyterLab: no /lab, /tree, terminals or
  contents API, and its kernel websocket relays widget messages only (no execute_request). The Hub's
  OAuth lets in only the server's owner; there is no sopcoach sign-in page.
- **Trainers** (the Hub group ``trainers``) also reach the trainer apps, a Hub service at
  ``/services/sopcoach-trainer/`` (``sopcoach serve --trainer --hub``); the role below gives that
  group, and no one else, the service's access scope.

Read from the Hub's environment and passed on to every server:

``SOPCOACH_DB_URL`` (required)
    The records database every learner server and the trainer service share, e.g.
    ``postgresql+psycopg://sopcoach:PASSWORD@db.example.com/sopcoach``.
``SOPCOACH_CONTENT``, ``SOPCOACH_HOME``, ``SOPCOACH_LANG`` (optional)
    As for ``sopcoach serve`` (README, "Where the data lives").
``SOPCOACH_TRAINERS`` (optional)
    Comma-separated Hub user names put in the ``trainers`` group when the Hub starts (members can
    also be managed on the Hub's admin page).
``SOPCOACH_TRAINER_PORT`` (optional, default 8867)
    The loopback port of the trainer service.
``SOPCOACH_IDLE_TIMEOUT`` (optional, default 3600)
    Seconds without activity after which the Hub service ``idle-culler`` (``jupyterhub-idle-culler``,
    the ``hub`` extra) stops a user's server; ``0`` runs no culler. The Hub learns of activity from
    its proxy's routes. A stopped server costs nothing; the exam and the lessons resume from the
    database at the next start.

Left to the site, below this file or in a file that loads it (``load_subconfig``): the authenticator
(JupyterHub's default is PAM: the machine's accounts), who may log in (``c.Authenticator.allowed_users``
or ``allow_all``), admins, TLS or a reverse proxy in front, and the spawner. JupyterHub's default
spawner, ``LocalProcessSpawner``, runs each user's server as that user's own OS account (the Hub runs
as root, every learner has an account). Also left to the site: ``c.JupyterHub.public_url``, needed
as soon as browsers reach the Hub by a name: its host name is the only one besides loopback the
user servers answer to (any other ``Host`` gets 400; docs/deploy.md); and the ports, where the
defaults collide.

The browser test (tests/e2e/test_jupyterhub.py, via tests/e2e/hub_servers.py) loads this very file
from a site file of its own with JupyterHub's ``SharedPasswordAuthenticator``, loopback ports,
``public_url`` unset (the browser reaches the Hub as 127.0.0.1) and ``SimpleLocalProcessSpawner``
(every server as the Hub's own OS user, which JupyterHub says is for testing only).
"""
import os
import sys

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

#: The sopcoach command, in the Python environment JupyterHub itself runs in.
SOPCOACH = [sys.executable, "-m", "sopcoach.cli.main"]
TRAINER_SERVICE = "sopcoach-trainer"

if not os.environ.get("SOPCOACH_DB_URL"):
    raise SystemExit("deploy/jupyterhub_config.py: set SOPCOACH_DB_URL (the records database every server shares)")

#: What every server inherits from the Hub's environment (the Hub's own secrets stay behind).
PASSED = {name: os.environ[name] for name in
          ("SOPCOACH_DB_URL", "SOPCOACH_CONTENT", "SOPCOACH_HOME", "SOPCOACH_LANG", "PATH", "PYTHONPATH", "LANG")
          if os.environ.get(name)}

# -- every user's server: the learner app ------------------------------------------------------
c.Spawner.cmd = [*SOPCOACH, "serve", "--hub"]
c.Spawner.args = []
c.Spawner.environment = PASSED
c.Spawner.env_keep = []          # nothing else from the Hub's environment
c.Spawner.start_timeout = 180    # the server, its kernel zygote and a preheated page; two busy cores
c.Spawner.http_timeout = 180
c.JupyterHub.allow_named_servers = False   # one server per user: the learner app

# -- the trainer apps: a Hub service only the trainers group may open ---------------------------
trainer_port = int(os.environ.get("SOPCOACH_TRAINER_PORT", "8867"))
c.JupyterHub.services = [{
    "name": TRAINER_SERVICE,
    "display": True,
    "url": f"http://127.0.0.1:{trainer_port}",
    "command": [*SOPCOACH, "serve", "--trainer", "--hub"],
    "environment": PASSED,
    "oauth_no_confirm": True,
}]
c.JupyterHub.load_roles = [{
    "name": "sopcoach-trainers",
    "description": "Open the sopcoach trainer apps",
    "groups": ["trainers"],
    "scopes": [f"access:services!service={TRAINER_SERVICE}"],
}]

# -- idle user servers are stopped: jupyterhub-idle-culler as a Hub service ----------------------
# The role carries the scopes jupyterhub-idle-culler documents for JupyterHub 5/6 when it stops
# servers only (not users): list the users, read their activity and servers, delete servers.
idle_timeout = int(os.environ.get("SOPCOACH_IDLE_TIMEOUT", "3600"))
if idle_timeout > 0:
    c.JupyterHub.services.append({
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle_timeout}"],
    })
    c.JupyterHub.load_roles.append({
        "name": "idle-culler",
        "description": "Stop idle sopcoach learner servers",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    })

trainers = [name.strip() for name in os.environ.get("SOPCOACH_TRAINERS", "").split(",") if name.strip()]
c.JupyterHub.load_groups = {"trainers": {"users": trainers}}
