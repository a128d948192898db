"""The one YAML writer: round trip, backup of the version before, lock, atomic all-or-nothing."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.representer import RepresenterError

from support import ROOT

from sopcoach.authoring.versions import set_sop_version
from sopcoach.authoring.yaml_writer import history, update_yaml
from sopcoach.content.playbook import load_playbook

COUNTER = """\
# counts updates; this comment must survive every write
counter:
  n: 0   # trailing comment
  other: "kept"
"""
ROUNDS = 25


def _bump(path: str, home: str, start: Any) -> None:
    def edit(doc):
        doc["counter"]["n"] += 1

    start.wait()
    for _ in range(ROUNDS):
        update_yaml(path, home, edit, "save")


@pytest.fixture
def playbook_dir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "playbook", tmp_path / "content" / "playbook")
    return tmp_path / "content" / "playbook"


def test_set_sop_version_keeps_comment_and_backs_up_previous_content(playbook_dir, tmp_path):
    """The header comment survives; the previous bytes are kept in playbook-history/<id>/."""
    home = tmp_path / "home"
    path = playbook_dir / "sop.yaml"
    before = path.read_bytes()
    assert b"# sop.yaml: the name, currency and release label" in before

    assert set_sop_version(playbook_dir, "1.10", home=home, by="ana") == path

    after = path.read_text(encoding="utf-8")
    assert "# sop.yaml: the name, currency and release label" in after
    assert load_playbook(playbook_dir).sop.version == "1.10"
    [backup] = history(home)
    assert backup.kind == "release" and backup.by == "ana"
    assert backup.changed == ("playbook/sop.yaml",)
    assert (backup.folder / "sop.yaml").read_bytes() == before
    assert set(backup.files) == {p.name for p in playbook_dir.glob("*.yaml")}


def test_two_processes_writing_at_once_lose_no_update(tmp_path):
    """Two processes each bump a counter 25 times through the writer: the file ends at 50, valid YAML."""
    path, home = tmp_path / "pb" / "counter.yaml", tmp_path / "home"
    path.parent.mkdir()
    path.write_text(COUNTER, encoding="utf-8")
    ctx = multiprocessing.get_context("forkserver")  # children fork from a server that imported this module
    ctx.set_forkserver_preload([__name__])
    start = ctx.Event()
    procs = [ctx.Process(target=_bump, args=(str(path), str(home), start)) for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    text = path.read_text(encoding="utf-8")
    assert text == COUNTER.replace("n: 0 ", f"n: {2 * ROUNDS}")
    assert len(history(home)) == 2 * ROUNDS
    assert not list(path.parent.glob(".*sopcoach-tmp"))


def test_a_value_that_cannot_be_written_leaves_the_file_untouched(tmp_path):
    """A failure while producing the new text writes nothing: same bytes, no backup, no temp file."""
    path, home = tmp_path / "pb" / "counter.yaml", tmp_path / "home"
    path.parent.mkdir()
    path.write_text(COUNTER, encoding="utf-8")

    def edit(doc):
        doc["counter"]["n"] = object()

    with pytest.raises(RepresenterError):
        update_yaml(path, home, edit, "save")
    assert path.read_text(encoding="utf-8") == COUNTER
    assert history(home) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["counter.yaml"]


def test_an_edit_that_changes_nothing_writes_nothing(tmp_path):
    path, home = tmp_path / "pb" / "counter.yaml", tmp_path / "home"
    path.parent.mkdir()
    path.write_text(COUNTER, encoding="utf-8")
    assert update_yaml(path, home, lambda doc: None, "save") is None
    assert history(home) == []
    assert path.read_text(encoding="utf-8") == COUNTER


_SAVE_IN_A_READ_ONLY_FOLDER = """
import sys
from sopcoach.authoring.yaml_writer import update_yaml
from sopcoach.errors import ContentNotWritable
try:
    update_yaml(sys.argv[1], sys.argv[2], lambda doc: doc.__setitem__("n", 2), kind="save", note="n=2")
except ContentNotWritable as exc:
    print("refused:", exc)
"""


def test_a_folder_the_server_cannot_write_is_refused_before_any_backup(tmp_path):
    """A content folder this process may not write (a Kubernetes trainer pod): the save is refused with a line
    that says so, the file is unchanged, no temporary file is left and the history has no entry for it.

    The process runs without capabilities (setpriv), so even root meets the folder's read-only mode."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to run this test as root")
    folder, home = tmp_path / "playbook", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    target = folder / "x.yaml"
    target.write_text("n: 1  # the count\n", encoding="utf-8")
    folder.chmod(0o555)
    try:
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] if os.geteuid() == 0 else []
        out = subprocess.run([*prefix, sys.executable, "-c", _SAVE_IN_A_READ_ONLY_FOLDER, str(target), str(home)],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "SOPCOACH_LANG": "en"})
    finally:
        folder.chmod(0o755)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"refused: cannot save: this server may not write {folder} (Permission denied)")
    assert target.read_text(encoding="utf-8") == "n: 1  # the count\n"
    assert sorted(p.name for p in folder.iterdir()) == ["x.yaml"]
    assert history(home) == []
