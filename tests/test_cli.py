"""The `sopcoach` command: enroll, results, and the environment settings."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from support import ROOT


def _run(args, home, **extra_env):
    env = dict(os.environ, SOPCOACH_HOME=str(home), SOPCOACH_CONTENT=str(ROOT))
    env.pop("SOPCOACH_DB_URL", None)
    env.update(extra_env)
    return subprocess.run([sys.executable, "-m", "sopcoach.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_enroll_prints_a_code_that_signs_in(tmp_path):
    """`sopcoach enroll` issues a code that authenticates against the database in SOPCOACH_HOME."""
    proc = _run(["enroll", "--id", "E77", "--name", "周九", "--team", "华南"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    code = proc.stdout.split("access code: ")[1].split()[0]
    from sopcoach.records import Records
    r = Records(f"sqlite:///{tmp_path / 'sopcoach.db'}")
    assert r.authenticate("E77", code).team == "华南"
    r.dispose()


def test_db_url_setting_is_honoured(tmp_path):
    """SOPCOACH_DB_URL puts the records where it says."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    proc = _run(["enroll", "--id", "E1", "--name", "A"], tmp_path / "home", SOPCOACH_DB_URL=url)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "home" / "sopcoach.db").exists()


def _scored_attempt(home):
    from sopcoach.config import Installation, Settings, installation
    s = Settings(home=home, db_url=f"sqlite:///{home / 'sopcoach.db'}", lang="zh-CN", content=ROOT)
    inst = installation(s)
    inst.records.enroll("E5", "吴十", team="华北", cohort="2026-11")
    svc = inst.exam_service()
    aid = svc.start_or_resume("E5", seed=3)
    svc.submit(aid)
    inst.records.dispose()


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_results_export(tmp_path, fmt):
    """`sopcoach results` exports each attempt with learner, state, exact score and pass status."""
    _scored_attempt(tmp_path)
    proc = _run(["results", "--format", fmt], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout) if fmt == "json" else list(csv.DictReader(io.StringIO(proc.stdout)))
    (row,) = rows
    assert row["learner_id"] == "E5" and row["team"] == "华北" and row["state"] == "scored"
    assert str(row["passed"]) in ("False", "false")
    assert row["score"] == "0/1" and row["percent"] == "0.0"


def test_bad_content_stops_serve_with_located_problems(tmp_path):
    """`sopcoach serve` on a broken playbook prints the problems and exits 1 before serving."""
    import shutil
    content = tmp_path / "content"
    shutil.copytree(ROOT / "playbook", content / "playbook")
    shutil.copytree(ROOT / "quizzes", content / "quizzes")
    shutil.copytree(ROOT / "notebooks", content / "notebooks")
    sla = content / "playbook" / "slas.yaml"
    sla.write_text(sla.read_text(encoding="utf-8").replace("unit: working_days", "unit: workdays", 1),
                   encoding="utf-8")
    proc = _run(["serve", "--port", "8999"], tmp_path / "home", SOPCOACH_CONTENT=str(content))
    assert proc.returncode == 1
    assert "slas.yaml:" in proc.stderr and "unit" in proc.stderr
