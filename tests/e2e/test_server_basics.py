"""The learner server of :mod:`sopcoach.web.server`: what it renders, what it refuses, preheating.

The server renders ``app.ipynb`` of its root at ``/learn/`` for a signed-in learner and nothing
else; here the app is a one-button notebook, so the tests are about the server, not the sopcoach
app. Layout built per test (``tmp``)::

    tmp/secret.yaml                  outside the root
    tmp/outside.ipynb                outside the root
    tmp/learner-private/leak.ipynb   sibling whose name starts like the root's
    tmp/learner/                     the served root
        app.ipynb                    the one page (a button)
        other.ipynb                  another notebook: never rendered
        pic.svg                      an image (plain Voila would serve it; the learner server does not)
        playbook/x.yaml              inside the root, but not an image

Probes with ``..`` go through :mod:`http.client` because requests/urllib3 normalise dot segments
before sending, which would test nothing.
"""

from __future__ import annotations

import http.client
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import requests

from support import SESSION_COOKIE, sign_in_browser, sign_in_session

BUTTON_CELL = (
    "import ipywidgets as w; b = w.Button(description=\"Go\"); out = w.Output(); "
    "b.on_click(lambda _: out.append_stdout(\"clicked\")); display(w.VBox([b, out]))"
)
NOTEBOOK = "app.ipynb"
KERNEL_ID = re.compile(r"kernelId[^0-9a-f]+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
CODE = "basics-code-0001"


@dataclass
class Site:
    root: Path
    home: Path
    markers: tuple[str, ...]

    def env(self) -> dict[str, str]:
        return {"SOPCOACH_HOME": str(self.home), "SOPCOACH_DB_URL": f"sqlite:///{self.home / 'sopcoach.db'}"}


def _notebook(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """The served folder and its neighbours, and a data folder with learners e7001 and e7002 enrolled."""
    from sopcoach.records.store import Records
    secret, playbook, leak = (f"{kind}-{uuid.uuid4().hex}" for kind in ("SECRET", "PLAYBOOK", "LEAK"))
    root = tmp_path / "learner"
    (root / "playbook").mkdir(parents=True)
    nbformat.write(_notebook(BUTTON_CELL), root / NOTEBOOK)
    nbformat.write(_notebook(f"print({leak!r})"), root / "other.ipynb")
    (root / "pic.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', encoding="utf-8"
    )
    (root / "playbook" / "x.yaml").write_text(f"marker: {playbook}\n", encoding="utf-8")
    (tmp_path / "secret.yaml").write_text(f"marker: {secret}\n", encoding="utf-8")
    nbformat.write(_notebook(f"print({leak!r})"), tmp_path / "outside.ipynb")
    (tmp_path / "learner-private").mkdir()
    nbformat.write(_notebook(f"print({leak!r})"), tmp_path / "learner-private" / "leak.ipynb")
    home = tmp_path / "home"
    home.mkdir()
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    records.enroll("e7001", "测试一", code=CODE)
    records.enroll("e7002", "测试二", code=CODE)
    records.dispose()
    return Site(root=root, home=home, markers=(secret, playbook, leak))


def raw_get(base_url: str, path: str, cookie: str | None = None, timeout: float = 30) -> tuple[int, str]:
    """GET ``path`` exactly as written (no dot-segment normalisation, no redirects)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


UP = "..%2F"
REFUSED_PATHS = [
    # Voila's file route is not mounted: not even images below the root.
    "/voila/files/pic.svg",
    "/voila/files/playbook/x.yaml",
    f"/voila/files/{NOTEBOOK}",
    "/voila/files/../secret.yaml",
    f"/voila/files/{UP}secret.yaml",
    "/voila/files/%2E%2E%2Fsecret.yaml",
    "/voila/files/playbook/..%2F..%2Fsecret.yaml",
    # Voila's per-notebook renderer is not mounted: the one page is /learn/.
    f"/voila/render/{NOTEBOOK}",
    "/voila/render/other.ipynb",
    "/voila/render/playbook/x.yaml",
    f"/voila/render/{UP}secret.yaml",
    "/voila/render/../outside.ipynb",
    f"/voila/render/{UP}outside.ipynb",
    f"/voila/render/{UP}learner-private%2Fleak.ipynb",
    # Static routes are rooted in Voila's install, not in the notebooks.
    f"/voila/static/{UP * 12}secret.yaml",
    "/voila/static/../../secret.yaml",
    f"/voila/templates/lab/static/{UP * 12}secret.yaml",
    f"/voila/labextensions/{UP * 12}secret.yaml",
    f"/voila/api/themes/{UP * 12}secret.yaml",
    # Jupyter server routes that are not mounted.
    "/files/playbook/x.yaml",
    "/files/secret.yaml",
    "/files/../secret.yaml",
    "/api/contents/",
    "/api/contents/playbook/x.yaml",
    # No notebook tree, listing or contents API at all.
    "/voila/tree",
    "/voila/tree/",
    f"/voila/tree/{UP}",
    "/voila/api/contents/",
    "/voila/api/contents/playbook/x.yaml",
    f"/voila/api/contents/{UP}secret.yaml",
    # Nothing of the root is served beside the page.
    f"/{NOTEBOOK}",
    "/other.ipynb",
    "/pic.svg",
    "/playbook/x.yaml",
    "/secret.yaml",
]


def test_notebook_renders_and_files_stay_private(learner_server, site: Site) -> None:
    """The signed-in learner gets the app page without its sources; no file of the root or beside it
    is served to anyone."""
    base = learner_server(site.root, site.env(), pool_size=0).base
    session = sign_in_session(base, "e7001", CODE)

    page = session.get(f"{base}learn/", timeout=120)
    assert page.status_code == 200
    assert "application/vnd.jupyter.widget-view+json" in page.text
    assert "on_click" not in page.text, "sources must be stripped from the page"

    # Positive control: the page's own static files are served.
    scripts = re.findall(r'src="(/voila/static/[^"]+)"', page.text)
    assert scripts
    assert all(requests.get(base + s.lstrip("/"), timeout=30).status_code == 200 for s in scripts)

    cookie = f"{SESSION_COOKIE}={session.cookies.get(SESSION_COOKIE)}"
    served = []
    for path in REFUSED_PATHS:
        for who in (None, cookie):
            status, body = raw_get(base, path, who)
            leaked = [m for m in site.markers if m in body]
            if status == 200 or leaked:
                served.append((path, "signed in" if who else "anonymous", status, leaked))
    assert not served, f"served although it must not be: {served}"

    # Every address below /learn/ is the same page: never another notebook or a file.
    for path in ("/learn/other.ipynb", f"/learn/../{UP}secret.yaml"):
        status, body = raw_get(base, path, cookie, timeout=120)
        assert not [m for m in site.markers if m in body], path


def test_kernels_api_is_not_open(learner_server, site: Site) -> None:
    """Only the learner whose page a kernel serves can read it; nobody can list or delete kernels."""
    base = learner_server(site.root, site.env(), pool_size=0).base
    owner = sign_in_session(base, "e7001", CODE)
    other = sign_in_session(base, "e7002", CODE)
    kernel_id = KERNEL_ID.search(owner.get(f"{base}learn/", timeout=120).text).group(1)

    # No listing, for anyone.
    for path in ("api/kernels", "api/kernels/", "api/sessions", "api/kernelspecs"):
        for client in (requests.Session(), owner):
            response = client.get(base + path, timeout=10)
            assert response.status_code in (403, 404), path
            assert kernel_id not in response.text

    # The owner can read its state; an anonymous visitor and another learner cannot.
    assert owner.get(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 200
    assert requests.get(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 403
    assert other.get(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 403
    # Nobody deletes it: not without the XSRF token, not with it, not across origins.
    xsrf = {"X-XSRFToken": owner.cookies.get("_xsrf")}
    assert owner.delete(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 403
    assert owner.delete(f"{base}api/kernels/{kernel_id}", headers=xsrf, timeout=10).status_code in (403, 405)
    cross = owner.delete(f"{base}api/kernels/{kernel_id}", headers={**xsrf, "Origin": "http://evil.example"},
                         timeout=10)
    assert cross.status_code in (403, 404, 405)
    assert requests.delete(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 403
    assert owner.get(f"{base}api/kernels/{kernel_id}", timeout=10).status_code == 200


def test_template_override_from_url_is_ignored(learner_server, site: Site) -> None:
    """``?template=script`` would otherwise start a kernel and hang on TemplateNotFound."""
    base = learner_server(site.root, site.env(), pool_size=0).base
    session = sign_in_session(base, "e7001", CODE)
    response = session.get(f"{base}learn/?template=script", timeout=120)
    assert response.status_code == 200
    assert "application/vnd.jupyter.widget-view+json" in response.text
    assert "on_click" not in response.text


def test_preheated_button_clicks_in_chromium(learner_server, site: Site, page, artifacts) -> None:
    """A learner signed in at the door gets a kernel started before the visit, and its button works."""
    from playwright.sync_api import expect

    server = learner_server(site.root, site.env(), pool_size=1)
    base = server.base
    server.wait_for_log(rf"Kernel pool of {re.escape(NOTEBOOK)} is filled", timeout=90)
    pooled = set(re.findall(r"Kernel started: ([0-9a-f-]{36})", server.log()))

    sign_in_browser(page, base, "e7001", CODE, ready="")
    assert page.url == f"{base}learn/"
    button = page.get_by_role("button", name="Go")
    expect(button).to_be_visible(timeout=60_000)
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_text("clicked", exact=True)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts / "clicked.png"), full_page=True)

    used = server.wait_for_log(
        rf"Using pre-heated kernel: ([0-9a-f-]{{36}}) for {re.escape(NOTEBOOK)}", timeout=10
    ).group(1)
    assert used in pooled, "the page must be served by a kernel started before the visit"
    assert used in page.content()
