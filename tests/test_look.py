"""The pages' look: the company's settings (:func:`sopcoach.config.look`) and the ``sopcoach`` Voila template
(:mod:`sopcoach.web.look`) as Voila finds it. The pages themselves: tests/e2e/test_look_browser.py."""
from __future__ import annotations

import os

import pytest
from voila import notebook_renderer
from voila.paths import collect_static_paths, collect_template_paths

from sopcoach.config import DEFAULT_ACCENT, DEFAULT_PRIMARY, MAX_LOGO_BYTES, Look, look
from sopcoach.errors import ConfigError
from sopcoach.web.look import TEMPLATE, TEMPLATE_ROOT, LookExporter, use_sopcoach_template
from support import run_sopcoach

VARIABLES = ("SOPCOACH_COMPANY", "SOPCOACH_COMPANY_EN", "SOPCOACH_PRIMARY_COLOR", "SOPCOACH_ACCENT_COLOR", "SOPCOACH_LOGO")
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture(autouse=True)
def unset(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_settings():
    """Nothing set: sopcoach's name, its blue and amber, no logo; white text on the blue bar."""
    got = look()
    assert got == Look(("sopcoach", "sopcoach"), DEFAULT_PRIMARY, DEFAULT_ACCENT, "")
    assert got.on_primary == "#ffffff"


def test_company_name_colours_and_logo_from_the_environment(monkeypatch, tmp_path):
    """The English name falls back to the Chinese one; a light bar gets dark text; the logo travels in the page."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    monkeypatch.setenv("SOPCOACH_COMPANY", "  示例销售有限公司 ")
    monkeypatch.setenv("SOPCOACH_PRIMARY_COLOR", "#FFD34E")
    monkeypatch.setenv("SOPCOACH_ACCENT_COLOR", "#222")
    monkeypatch.setenv("SOPCOACH_LOGO", str(logo))
    got = look()
    assert got.company == ("示例销售有限公司", "示例销售有限公司")
    assert (got.primary, got.accent, got.on_primary) == ("#ffd34e", "#222", "#1d2733")
    assert got.logo.startswith("data:image/png;base64,iVBORw0KGgo")
    monkeypatch.setenv("SOPCOACH_COMPANY_EN", "Example Sales Co.")
    assert look().company == ("示例销售有限公司", "Example Sales Co.")


@pytest.mark.parametrize("variable,value,words", [
    ("SOPCOACH_PRIMARY_COLOR", "blue", ["SOPCOACH_PRIMARY_COLOR='blue'", "#rrggbb", DEFAULT_PRIMARY]),
    ("SOPCOACH_ACCENT_COLOR", "#12345", ["SOPCOACH_ACCENT_COLOR='#12345'", "#rrggbb"]),
    ("SOPCOACH_LOGO", "/nowhere/logo.png", ["SOPCOACH_LOGO=/nowhere/logo.png", "No such file", "unset SOPCOACH_LOGO"]),
    ("SOPCOACH_LOGO", "logo.gif", ["SOPCOACH_LOGO=logo.gif", ".png", ".svg"]),
])
def test_unusable_settings_are_refused_with_the_fix(monkeypatch, variable, value, words):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        look()
    for word in words:
        assert word in str(caught.value)


def test_a_logo_too_large_for_every_page_is_refused(monkeypatch, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_bytes(b"<svg/>" + b" " * MAX_LOGO_BYTES)
    monkeypatch.setenv("SOPCOACH_LOGO", str(logo))
    with pytest.raises(ConfigError, match=r"logo.svg: 200,006 bytes; .* under 200,000 bytes"):
        look()


def test_voila_finds_the_template_on_lab_and_its_static_files(monkeypatch):
    """After :func:`use_sopcoach_template`, Voila's own lookup finds ``sopcoach`` first, then ``lab`` and
    ``base`` (whose stylesheets and scripts the pages load), and renders with :class:`LookExporter`."""
    monkeypatch.setenv("JUPYTER_PATH", "")
    monkeypatch.setattr(notebook_renderer, "VoilaExporter", notebook_renderer.VoilaExporter)
    monkeypatch.setattr(LookExporter, "_globals", None)
    use_sopcoach_template()
    assert os.environ["JUPYTER_PATH"].split(os.pathsep)[0] == str(TEMPLATE_ROOT)
    assert notebook_renderer.VoilaExporter is LookExporter and LookExporter._globals["sopcoach_look"] == look()
    paths = collect_template_paths(["voila", "nbconvert"], TEMPLATE, prune=True)
    assert paths[0] == str(TEMPLATE_ROOT / "voila" / "templates" / TEMPLATE)
    names = [os.path.basename(p) for p in paths if p.endswith(("/lab", "/base"))]
    assert names[:2] == ["lab", "lab"] and "base" in names
    static = collect_static_paths(["voila", "nbconvert"], TEMPLATE)
    assert any(os.path.isfile(os.path.join(p, "index.css")) for p in static)      # nbconvert's lab
    assert any(os.path.isfile(os.path.join(p, "voila.js")) for p in static)       # Voila's base
    assert any(os.path.isfile(os.path.join(p, "sopcoach.css")) for p in static)   # the pages' own


def test_the_template_asks_nothing_from_outside_the_server():
    """No file of the template names an address on another server (Voila's lab template links a CDN)."""
    folder = TEMPLATE_ROOT / "voila" / "templates" / TEMPLATE
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"conf.json", "index.html.j2", "sopcoach.css"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "https://" not in text and "//cdn" not in text, path


@pytest.mark.parametrize("trainer", [[], ["--trainer"]])
def test_serve_with_an_unusable_colour_stops_in_one_line(tmp_path, trainer):
    """`sopcoach serve` refuses a wrong colour before any server starts: one line, the variable, exit 1."""
    proc = run_sopcoach(["serve", "--port", "8999", *trainer], tmp_path / "home", SOPCOACH_PRIMARY_COLOR="blue")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("sopcoach serve: SOPCOACH_PRIMARY_COLOR='blue' is not a colour; write it as #rrggbb, "
                           f"e.g. {DEFAULT_PRIMARY}\n")
