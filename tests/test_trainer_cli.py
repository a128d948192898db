"""The trainer commands (``release``, ``diff``, ``review``, ``recertify``, ``verify``, ``certificate``,
``itemstats``) and the trainer server's layout (``serve --trainer``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from support import ROOT, FakeClock, correct_response, raise_supervisor_limit

from sopcoach.cli.main import build_parser, main


@pytest.fixture
def env(tmp_path, monkeypatch):
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, tmp_path / part)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("SOPCOACH_CONTENT", str(tmp_path))
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    monkeypatch.delenv("SOPCOACH_DB_URL", raising=False)
    return tmp_path


def certify(env: Path, learner: str = "E1") -> str:
    """Pass the exam once through the installation; return the certificate code."""
    from sopcoach.certification.certificates import certificate_table
    from sopcoach.config import installation, settings
    inst = installation(settings())
    clock = FakeClock()
    service = inst.exam_service(clock)
    inst.records.enroll(learner, "张三", team="east")
    aid = service.start_or_resume(learner, seed=1)
    for qid in inst.records.attempt(aid).question_ids:
        service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
    clock.advance(minutes=10)
    service.submit(aid)
    return certificate_table(inst.records).iloc[0]["code"]


def edit(env: Path, texts: bool = True) -> None:
    raise_supervisor_limit(env / "playbook", texts)


def test_release_diff_review_cycle(env, capsys):
    """release, edit, diff shows the change and its impact, release --label writes sop.yaml, review confirms."""
    assert main(["release", "--by", "王老师"]) == 0
    assert "released version 1.0 (previous: none)" in capsys.readouterr().out
    edit(env)
    assert main(["diff", "--files"]) == 0
    out = capsys.readouterr().out
    assert "~ quote-limits (company-setting)" in out
    assert "authority[sales_supervisor].max_quote_amount: 500000 -> 800000" in out
    assert "lessons: L3 authority" in out and "compliance checks: authority" in out
    assert "+    max_quote_amount: 800000" in out
    assert main(["release", "--label", "1.1", "--note", "monthly review"]) == 0
    out = capsys.readouterr().out
    assert "sop.version set to 1.1" in out and "changed clauses: quote-limits" in out
    assert 'version: "1.1"' in (env / "playbook" / "sop.yaml").read_text(encoding="utf-8")
    assert main(["review"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("question\tchanged clauses\treleases\n") and "sp-rep-approver\tquote-limits\t1.1" in out
    assert main(["review", "--confirm", "sp-rep-approver"]) == 0
    assert "confirmed 1, back in the exam draw: sp-rep-approver" in capsys.readouterr().out
    assert main(["review", "--confirm", "sp-rep-approver"]) == 1
    assert "not waiting for review: sp-rep-approver" in capsys.readouterr().err


def test_release_refused_while_a_clause_quotes_the_old_value_then_confirmed(env, capsys):
    """A changed value still quoted by its clause refuses the release (sop.yaml untouched);
    --confirm-quotes --by releases it and the release keeps who confirmed which quotes."""
    from sopcoach.authoring.versions import latest_release
    from sopcoach.config import open_records, settings
    assert main(["release"]) == 0
    edit(env, texts=False)
    sop = (env / "playbook" / "sop.yaml").read_bytes()
    capsys.readouterr()
    assert main(["diff"]) == 0
    assert "warning: these texts still quote a changed value" in capsys.readouterr().out
    assert main(["release", "--label", "1.1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[1] == "sopcoach release: not released: 2 text(s) still quote a value changed since the last release:"
    assert err[2].startswith("  clause quote-limits (Quote authority and approval levels per role), text (zh-CN), "
                             "still says 500,000元: ")
    assert err[3].endswith("still says 500,000 CNY: \"…upervisor: amount up to 500,000 CNY, discount up to 20%; ab…\"; "
                           "authority[sales_supervisor].max_quote_amount changed from 500000 to 800000")
    assert "`sopcoach release --confirm-quotes --by NAME`" in err[4]
    assert (env / "playbook" / "sop.yaml").read_bytes() == sop  # the refused --label wrote nothing
    assert main(["release", "--label", "1.1", "--confirm-quotes"]) == 2
    assert "--confirm-quotes needs --by NAME" in capsys.readouterr().err
    assert main(["release", "--label", "1.1", "--confirm-quotes", "--by", "王老师"]) == 0
    out = capsys.readouterr().out
    assert "released version 1.1 (previous: 1.0)" in out
    assert "quotes of changed values confirmed by 王老师 (recorded with the release):" in out
    kept = latest_release(open_records(settings())).snapshot["quotes_confirmed"]
    assert kept["by"] == "王老师" and [q["quoted"] for q in kept["quotes"]] == ["500,000元", "500,000 CNY"]


def test_release_refuses_content_with_problems(env, capsys):
    """A playbook with an error is not released; the problem is printed with file and line."""
    p = env / "playbook" / "slas.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("unit: working_days", "unit: workdays", 1), encoding="utf-8")
    assert main(["release"]) == 1
    err = capsys.readouterr().err
    assert "slas.yaml:" in err and "unit" in err


def test_verify_exit_codes(env, capsys):
    """verify exits 0 for a current certificate, 3 when recertification is due, 1 when not genuine."""
    assert main(["release"]) == 0
    code = certify(env)
    capsys.readouterr()
    assert main(["verify", code]) == 0
    assert capsys.readouterr().out.strip().endswith("CURRENT.")
    assert main(["verify", "SC-0000-0000-0000"]) == 1
    assert "NOT GENUINE" in capsys.readouterr().out
    edit(env)
    assert main(["release", "--label", "1.1"]) == 0
    capsys.readouterr()
    rc = main(["verify", code])
    out = capsys.readouterr().out
    if "quote-limits" in out:
        assert rc == 3 and "recertification is due" in out
        assert main(["recertify"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("employee id\tname\tteam\tcertificate\tissued\tversion\t") and "E1\t张三\teast" in out
    else:  # the draw did not examine the changed clause: still current
        assert rc == 0


def test_certificate_command_writes_a_pdf(env, capsys):
    """``certificate --learner E1 -o`` writes a PDF holding the code."""
    from pypdf import PdfReader
    code = certify(env)
    out = env / "c.pdf"
    assert main(["certificate", "--learner", "E1", "-o", str(out)]) == 0
    assert code in PdfReader(out).pages[0].extract_text()
    assert main(["certificate", "--learner", "nobody", "-o", str(out)]) == 1


def test_itemstats_command_prints_figures_and_csv(env, capsys, monkeypatch):
    """itemstats prints tables with a header row in the chosen language; --format json gives one record per
    question drawn."""
    certify(env)
    assert main(["itemstats"]) == 0
    out = capsys.readouterr().out
    assert "1 attempts (first attempt of each person)" in out
    assert "figure\tvalue\tn\tmin n\tnote\nmean\t100.0%\t1\t1\ttentative\n" in out  # a header row, percents
    assert "pass rate\t100.0%" in out and "{" not in out  # no Python dict
    assert "30 more question(s) have fewer than 10 answers: too few to judge." in out
    assert main(["itemstats", "--attempts", "all"], ) == 0 and "1 attempts (all attempts)" in capsys.readouterr().out
    monkeypatch.setenv("SOPCOACH_LANG", "zh-CN")
    assert main(["itemstats"]) == 0
    out = capsys.readouterr().out
    assert "指标\t数值\tn\t最少样本\t备注\n平均分\t100.0%" in out and "来源\t条款\t作答数\t失分率" in out
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    assert main(["itemstats", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 30 and records[0]["facility"] == 1.0


def test_serve_trainer_options():
    """``serve --trainer`` parses, with the trainer port chosen later (8867 by default)."""
    args = build_parser().parse_args(["serve", "--trainer"])
    assert args.trainer is True and args.port is None
    assert build_parser().parse_args(["serve"]).trainer is False


def test_trainer_site_holds_only_trainer_and_review(tmp_path):
    """The trainer server's root links trainer/ and review/, nothing else; stale entries go."""
    from sopcoach.web.launch import trainer_site
    nb = tmp_path / "notebooks"
    for d in ("learner", "trainer", "review"):
        (nb / d).mkdir(parents=True)
    site = tmp_path / "site"
    site.mkdir()
    (site / "learner").symlink_to(nb / "learner")
    trainer_site(nb, site)
    assert sorted(p.name for p in site.iterdir()) == ["review", "trainer"]
    assert (site / "trainer").resolve() == (nb / "trainer").resolve()


def test_trainer_command_requires_a_token_from_the_environment():
    """The token comes from JUPYTER_TOKEN (never the argv); Voila's file route is closed."""
    from sopcoach.web.launch import trainer_command
    argv = trainer_command(Path("."), port=9100)
    assert "--Voila.auto_token=True" in argv and "--VoilaConfiguration.file_allowlist=[]" in argv
    assert not any("token=" in a.lower() and "auto_token" not in a.lower() for a in argv)


def test_run_trainer_refuses_a_short_token(tmp_path):
    """A token under 16 characters is refused before anything starts."""
    from sopcoach.web.launch import run_trainer
    with pytest.raises(ValueError, match="at least 16 characters"):
        run_trainer(tmp_path, tmp_path / "site", "short")


def test_learner_notebooks_folder_holds_no_trainer_notebook():
    """The learner server's root (notebooks/learner) contains none of the trainer notebooks."""
    learner = {p.name for p in (ROOT / "notebooks" / "learner").rglob("*.ipynb")}
    trainer = {p.name for p in (ROOT / "notebooks" / "trainer").glob("*.ipynb")}
    assert {"playbook_changes.ipynb", "results.ipynb", "item_analysis.ipynb", "certificates.ipynb",
            "playbook_editor.ipynb", "question_editor.ipynb"} <= trainer
    assert not learner & trainer
    assert not any("trainer" in p.parts for p in (ROOT / "notebooks" / "learner").rglob("*"))
