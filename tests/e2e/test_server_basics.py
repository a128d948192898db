"""The Voila server of :mod:`sopcoach.server`: what it renders, what it refuses, preheating.

Layout built per test (``tmp``)::

    tmp/secret.yaml                  outside the root
    tmp/outside.ipynb                outside the root
    tmp/learner-private/leak.ipynb   sibling whose name starts like the root's
    tmp/learner/                     the served root
        one_button.ipynb
        pic.svg                      an image: the one kind of file Voila serves
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

BUTTON_CELL = (
    "import ipywidgets as w; b = w.Button(description=\"Go\"); out = w.Output(); "
    "b.on_click(lambda _: out.append_stdout(\"clicked\")); display(w.VBox([b, out]))"
)
NOTEBOOK = "one_button.ipynb"
KERNEL_ID = re.compile(r"kernelId[^0-9a-f]+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


@dataclass
class Site:
    root: Path
    markers: tuple[str, ...]


def _notebook(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def site(tmp_path: Path) -> Site:
    secret, playbook, leak = (f"{kind}-{uuid.uuid4().hex}" for kind in ("SECRET", "PLAYBOOK", "LEAK"))
    root = tmp_path / "learner"
    (root / "playbook").mkdir(parents=True)
    nbformat.write(_notebook(BUTTON_CELL), root / NOTEBOOK)
    (root / "pic.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', encoding="utf-8"
    )
    (root / "playbook" / "x.yaml").write_text(f"marker: {playbook}\n", encoding="utf-8")
    (tmp_path / "secret.yaml").write_text(f"marker: {secret}\n", encoding="utf-8")
    nbformat.write(_notebook(f"print({leak!r})"), tmp_path / "outside.ipynb")
    (tmp_path / "learner-private").mkdir()
    nbformat.write(_notebook(f"print({leak!r})"), tmp_path / "learner-private" / "leak.ipynb")
    return Site(root=root, markers=(secret, playbook, leak))


def raw_get(base_url: str, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (no dot-segment normalisation, no redirects)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


UP = "..%2F"
REFUSED_PATHS = [
    # Voila's own file route: only images below the root.
    "/voila/files/playbook/x.yaml",
    f"/voila/files/{NOTEBOOK}",
    "/voila/files/../secret.yaml",
    f"/voila/files/{UP}secret.yaml",
    "/voila/files/%2E%2E%2Fsecret.yaml",
    "/voila/files/playbook/..%2F..%2Fsecret.yaml",
    # The renderer redirects non-notebooks to /voila/files and refuses notebooks outside root.
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
    # Jupyter server routes that Voila does not mount.
    "/files/playbook/x.yaml",
    "/files/secret.yaml",
    "/files/../secret.yaml",
    "/api/contents/",
    "/api/contents/playbook/x.yaml",
    # Voila's tree API only describes notebooks and folders, never file content.
    "/voila/api/contents/playbook/x.yaml",
    f"/voila/api/contents/{UP}secret.yaml",
    f"/voila/tree/{UP}",
]


def test_notebook_renders_and_files_stay_private(voila_server, site: Site) -> None:
    base = voila_server(site.root)

    page = requests.get(f"{base}/voila/render/{NOTEBOOK}", timeout=60)
    assert page.status_code == 200
    assert "application/vnd.jupyter.widget-view+json" in page.text
    assert "on_click" not in page.text, "sources must be stripped from the page"

    # Positive control: the file route exists and serves allowlisted images.
    image = requests.get(f"{base}/voila/files/pic.svg", timeout=10)
    assert image.status_code == 200 and "<svg" in image.text

    served = []
    for path in REFUSED_PATHS:
        status, body = raw_get(base, path)
        leaked = [m for m in site.markers if m in body]
        if status == 200 or leaked:
            served.append((path, status, leaked))
    assert not served, f"served although it must not be: {served}"

    # Following the renderer's redirect ends in a refusal too.
    followed = requests.get(f"{base}/voila/render/playbook/x.yaml", timeout=10)
    assert followed.status_code == 403 and site.markers[1] not in followed.text

    # The tree API lists notebooks and folders only.
    listing = requests.get(f"{base}/voila/api/contents/playbook", timeout=10)
    assert listing.status_code == 200 and "x.yaml" not in listing.text
    top = requests.get(f"{base}/voila/api/contents/", timeout=10).json()
    assert {item["name"] for item in top["content"]} == {NOTEBOOK, "playbook"}


def test_kernels_api_is_not_open(voila_server, site: Site) -> None:
    base = voila_server(site.root, pool_size=0)
    kernel_id = KERNEL_ID.search(
        requests.get(f"{base}/voila/render/{NOTEBOOK}", timeout=60).text
    ).group(1)

    # No listing: Voila mounts /api/kernels/<uuid> only.
    for path in ("/api/kernels", "/api/kernels/", "/api/sessions", "/api/kernelspecs"):
        response = requests.get(base + path, timeout=10)
        assert response.status_code == 404, path
        assert kernel_id not in response.text

    # Whoever knows the UUID can read its state (Voila has no auth by default) ...
    assert requests.get(f"{base}/api/kernels/{kernel_id}", timeout=10).status_code == 200
    # ... but a bare DELETE is refused by the XSRF check, and a cross-origin one by origin check.
    assert requests.delete(f"{base}/api/kernels/{kernel_id}", timeout=10).status_code == 403
    cross = requests.delete(
        f"{base}/api/kernels/{kernel_id}", headers={"Origin": "http://evil.example"}, timeout=10
    )
    assert cross.status_code in (403, 404)
    assert requests.get(f"{base}/api/kernels/{kernel_id}", timeout=10).status_code == 200


def test_template_override_from_url_is_ignored(voila_server, site: Site) -> None:
    """``?template=script`` would otherwise start a kernel and hang on TemplateNotFound."""
    base = voila_server(site.root, pool_size=0)
    response = requests.get(f"{base}/voila/render/{NOTEBOOK}?template=script", timeout=60)
    assert response.status_code == 200
    assert "application/vnd.jupyter.widget-view+json" in response.text
    assert "on_click" not in response.text


def test_preheated_button_clicks_in_chromium(voila_server, site: Site, page, artifacts) -> None:
    from playwright.sync_api import expect

    base = voila_server(site.root, pool_size=1)
    voila_server.wait_for_log(base, rf"Kernel pool of {re.escape(NOTEBOOK)} is filled", timeout=90)
    pooled = set(re.findall(r"Kernel started: ([0-9a-f-]{36})", voila_server.log(base)))

    page.goto(f"{base}/voila/render/{NOTEBOOK}")
    button = page.get_by_role("button", name="Go")
    expect(button).to_be_visible(timeout=60_000)
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_text("clicked", exact=True)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts / "clicked.png"), full_page=True)

    used = voila_server.wait_for_log(
        base, rf"Using pre-heated kernel: ([0-9a-f-]{{36}}) for {re.escape(NOTEBOOK)}", timeout=10
    ).group(1)
    assert used in pooled, "the page must be served by a kernel started before the visit"
    assert used in page.content()
