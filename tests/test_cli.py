"""The `sopcoach` command: enroll, results, where the data lives (flags, environment, defaults), and errors as one line."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest

from support import ROOT, run_sopcoach

from sopcoach.web.launch import free_port


def test_enroll_prints_a_code_that_signs_in(tmp_path):
    """`sopcoach enroll` issues a code that authenticates against the database in SOPCOACH_HOME."""
    proc = run_sopcoach(["enroll", "--id", "E77", "--name", "周九", "--team", "华南"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    code = proc.stdout.split("access code: ")[1].split()[0]
    from sopcoach.records.store import Records
    r = Records(f"sqlite:///{tmp_path / 'sopcoach.db'}")
    assert r.authenticate("E77", code).team == "华南"
    r.dispose()


def test_db_url_setting_is_honoured(tmp_path):
    """SOPCOACH_DB_URL puts the records where it says."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    proc = run_sopcoach(["enroll", "--id", "E1", "--name", "A"], tmp_path / "home", SOPCOACH_DB_URL=url)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "home" / "sopcoach.db").exists()


def _scored_attempt(home):
    from sopcoach.config import Settings, installation
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
    proc = run_sopcoach(["results", "--format", fmt], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout) if fmt == "json" else list(csv.DictReader(io.StringIO(proc.stdout)))
    (row,) = rows
    assert row["learner_id"] == "E5" and row["team"] == "华北" and row["state"] == "scored"
    assert str(row["passed"]) in ("False", "false")
    assert row["score"] == "0/30" and row["percent"] == "0.0"  # points of 30, never the reduced 0/1


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
    proc = run_sopcoach(["serve", "--port", "8999"], tmp_path / "home", SOPCOACH_CONTENT=str(content))
    assert proc.returncode == 1
    assert "slas.yaml:" in proc.stderr and "unit" in proc.stderr


# -- one place resolves content, data home and database; errors end as one line -------------------
def _content_copy(tmp_path):
    """Copy the shipped content (playbook, quizzes, notebooks) to ``tmp_path/content``; return it."""
    import shutil
    content = tmp_path / "content"
    for part in ("playbook", "quizzes", "notebooks"):
        shutil.copytree(ROOT / part, content / part)
    return content


def _sopcoach(args, cwd, **env_vars):
    """Run the real `sopcoach` command in ``cwd`` with only the given SOPCOACH_* variables set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPCOACH_")}
    env.update(env_vars)
    return subprocess.run([sys.executable, "-m", "sopcoach.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_enroll_from_another_folder_uses_the_servers_database(tmp_path):
    """`sopcoach enroll` run from any folder writes to the database the learner server resolves, not ./var."""
    from sopcoach.records.store import Records
    content = _content_copy(tmp_path)
    first, second = tmp_path / "desk", tmp_path / "elsewhere"
    first.mkdir()
    second.mkdir()
    one = _sopcoach(["enroll", "--id", "E1", "--name", "A"], first, SOPCOACH_CONTENT=str(content))
    two = _sopcoach(["enroll", "--id", "E2", "--name", "B"], second, SOPCOACH_CONTENT=str(content))
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    url = f"sqlite:///{content / 'var' / 'sopcoach.db'}"
    assert one.stderr == two.stderr == f"database: {url} (default: var/ in the content folder)\n"
    assert list(first.iterdir()) == [] and list(second.iterdir()) == []
    server = subprocess.run([sys.executable, "-c", "from sopcoach.config import settings; print(settings().db_url)"],
                            cwd=content / "notebooks" / "learner", capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("SOPCOACH_")}
                            | {"SOPCOACH_CONTENT": str(content)})
    assert server.stdout.strip() == url, server.stderr
    records = Records(url)
    for learner, proc in (("E1", one), ("E2", two)):
        code = proc.stdout.split("access code: ")[1].split()[0]
        assert records.authenticate(learner, code).id == learner
    records.dispose()


def test_flags_come_before_the_environment(tmp_path):
    """--home and --db-url, before or after the command, win over SOPCOACH_HOME and SOPCOACH_DB_URL."""
    content = _content_copy(tmp_path)
    env = dict(SOPCOACH_HOME=str(tmp_path / "env-home"), SOPCOACH_DB_URL=f"sqlite:///{tmp_path / 'env.db'}")
    proc = _sopcoach(["--content", str(content), "enroll", "--id", "E1", "--name", "A",
                      "--db-url", f"sqlite:///{tmp_path / 'flag.db'}"], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"database: sqlite:///{tmp_path / 'flag.db'} (--db-url)\n"
    proc = _sopcoach(["enroll", "--home", str(tmp_path / "flag-home"), "--id", "E2", "--name", "B"], tmp_path,
                     SOPCOACH_CONTENT=str(content), SOPCOACH_HOME=str(tmp_path / "env-home"))
    assert proc.stderr == f"database: sqlite:///{tmp_path / 'flag-home' / 'sopcoach.db'} (data home from --home)\n"
    assert not (tmp_path / "env.db").exists() and not (tmp_path / "env-home" / "sopcoach.db").exists()


def test_check_uses_the_same_content_as_enroll_whatever_the_folder(tmp_path):
    """`sopcoach check` checks the content folder the settings name, not a playbook/ in the working directory."""
    content = _content_copy(tmp_path)
    stray = tmp_path / "stray"
    (stray / "playbook").mkdir(parents=True)
    (stray / "playbook" / "sop.yaml").write_text("sop: [broken\n", encoding="utf-8")
    proc = _sopcoach(["check"], stray, SOPCOACH_CONTENT=str(content))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.fullmatch(rf"checking {re.escape(str(content))}\nok: no problems\nprovenance: \d+ items from the SOP, "
                        r"\d+ elaborations, \d+ company settings\n", proc.stderr)


def test_invalid_content_is_one_located_line_and_exit_1(tmp_path):
    """A command on a broken playbook prints the problem as path:line:column: field: message and exits 1."""
    content = _content_copy(tmp_path)
    sla = content / "playbook" / "slas.yaml"
    text = sla.read_text(encoding="utf-8").replace("unit: working_days", "unit: workdays", 1)
    sla.write_text(text, encoding="utf-8")
    line, column = next((n, row.index("workdays") + 1) for n, row in enumerate(text.splitlines(), 1) if "workdays" in row)
    proc = _sopcoach(["enroll", "--id", "E1", "--name", "A"], tmp_path, SOPCOACH_CONTENT=str(content),
                     SOPCOACH_HOME=str(tmp_path / "home"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"database: sqlite:///{tmp_path / 'home' / 'sopcoach.db'} (data home from SOPCOACH_HOME)",
        f"content/playbook/slas.yaml:{line}:{column}: slas[1].limit.unit: Input should be 'working_days', "
        "'calendar_days', 'elapsed_hours' or 'business_hours' (got 'workdays')"]


def test_unknown_content_folder_is_one_line_and_exit_1(tmp_path):
    """A --content folder without playbook/ is named in one line, exit code 1."""
    proc = _sopcoach(["--content", str(tmp_path), "results"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == (f"sopcoach results: no playbook/ folder in {tmp_path} (--content={tmp_path}); give "
                           "--content or set SOPCOACH_CONTENT to the folder that holds playbook/ and quizzes/\n")


def test_revoke_of_an_unknown_learner_is_one_line_and_exit_1(tmp_path):
    """`sopcoach revoke` of an id nobody has says so in one line and exits 1."""
    from sopcoach.records.store import Records
    (tmp_path / "home").mkdir()
    Records(f"sqlite:///{tmp_path / 'home' / 'sopcoach.db'}").dispose()
    proc = _sopcoach(["revoke", "E404"], tmp_path, SOPCOACH_CONTENT=str(ROOT), SOPCOACH_HOME=str(tmp_path / "home"))
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[1:] == ["sopcoach revoke: no learner with employee id 'E404' in this database"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("option, message", [
    (["--base-url", "sop"], "sopcoach serve: --base-url must start and end with '/' (e.g. /sop/), got 'sop'"),
    (["--host", "learn.example.com"], "sopcoach serve: --host must be an IP address of this machine "
                                      "(e.g. 127.0.0.1 or 0.0.0.0), got 'learn.example.com'"),
])
def test_serve_with_a_bad_option_is_one_line_and_exit_2(tmp_path, option, message):
    """`sopcoach serve` with an unusable option says which in one line, exits 2, and enrolls no demo learner."""
    from sopcoach.records.store import Records
    home = tmp_path / "home"
    proc = _sopcoach(["serve", "--port", "8999", *option], tmp_path, SOPCOACH_CONTENT=str(ROOT),
                     SOPCOACH_HOME=str(home))
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, message + "\n", "")
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    assert records.learners() == []
    records.dispose()



def test_content_without_notebooks_serves_the_installed_ones(tmp_path):
    """A content folder holding only playbook/ and quizzes/ (as the README describes it) gets the project's notebooks."""
    import shutil
    from sopcoach.config import settings
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, tmp_path / part)
    s = settings(tmp_path, home=tmp_path / "home")
    assert s.notebooks_dir == ROOT / "notebooks" and (s.notebooks_dir / "learner" / "app.ipynb").is_file()
    (tmp_path / "notebooks").mkdir()
    assert settings(tmp_path, home=tmp_path / "home").notebooks_dir == tmp_path / "notebooks"


def test_serve_hub_outside_a_hub_is_one_line_and_exit_1(tmp_path):
    """`sopcoach serve --hub` started by hand (no JUPYTERHUB_* from a Hub) names what is missing in one
    line, exits 1, and neither starts a server nor enrolls the demo learner."""
    from sopcoach.records.store import Records
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOPCOACH_", "JUPYTERHUB_"))}
    env.update(SOPCOACH_CONTENT=str(ROOT), SOPCOACH_HOME=str(home), JUPYTERHUB_USER="ann")
    for extra in ([], ["--trainer"]):
        proc = subprocess.run([sys.executable, "-m", "sopcoach.cli.main", "serve", "--hub", *extra], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert (proc.returncode, proc.stdout) == (1, ""), proc.stderr
        assert proc.stderr == ("sopcoach serve: --hub: JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX, "
                               "JUPYTERHUB_API_TOKEN, JUPYTERHUB_API_URL not set; this server must be started by "
                               "JupyterHub (see docs/deploy.md)\n")
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    assert records.learners() == []
    records.dispose()


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"]])
def test_db_commands_say_an_unreachable_database_in_one_line(tmp_path, command):
    """`sopcoach db current/upgrade` against a PostgreSQL server that does not answer: exit 1 and one line
    naming the database error, no traceback."""
    out = run_sopcoach(["--db-url", f"postgresql+psycopg://u:p@127.0.0.1:{free_port()}/db", *command], tmp_path)
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr and out.stderr.strip().splitlines()[-1].startswith(
        f"sopcoach {' '.join(command)}: database error (operational): connection failed")


def test_db_commands_on_a_mistyped_sqlite_path(tmp_path):
    """An SQLite file in a folder that does not exist: `db current` says there is no database there (exit 3,
    not the healthy "empty"); `db upgrade` says it cannot open the file (exit 1), no traceback."""
    url = f"sqlite:///{tmp_path / 'missing' / 'x.db'}"
    current = run_sopcoach(["--db-url", url, "db", "current"], tmp_path)
    assert current.returncode == 3 and current.stdout.startswith(f"no database file at {tmp_path / 'missing' / 'x.db'}")
    upgrade = run_sopcoach(["--db-url", url, "db", "upgrade"], tmp_path)
    assert upgrade.returncode == 1 and "Traceback" not in upgrade.stderr
    assert upgrade.stderr.strip().splitlines()[-1] == "sopcoach db upgrade: database error (operational): unable to open database file"
