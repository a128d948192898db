"""Rows no figure can count: unmapped or blank stages, blank deal ids, unreadable amounts, deal ids on several rows.

Each is a row problem (or, for identical copies, a data-quality notice) and the figures that need
those rows are not computable, never counted on the other rows (issue 14). The small exports are
written in the Maven export's format (its header and first rows, ../shared/data/crm).
"""
from __future__ import annotations

import shutil

import pytest

from sopcoach.analytics.inputs import gap_of
from sopcoach.analytics.kpis import breakdown, kpis, monthly_trend, stage_counts
from sopcoach.analytics.report import render_html
from sopcoach.analytics.review import review, review_json
from sopcoach.cli.main import main
from sopcoach.crm.quality import quality_report
from sopcoach.crm.reading import read_export
from support import ROOT, SHARED

CRM = SHARED / "data" / "crm"
MAVEN = CRM / "maven_crm_sales_opportunities"
HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n"


@pytest.fixture(scope="module")
def pbm():
    from sopcoach.content.playbook import load_playbook
    return load_playbook(ROOT / "playbook")


def export(folder, *rows: str, name: str = "sales_pipeline.csv"):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture
def stages_export(tmp_path):
    """Stages Won, Lost, Closed Lost (unmapped), won (case differs), blank; a Won row without a deal id."""
    return export(tmp_path / "stages",
                  "D1,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,100",
                  "D2,Moses Frase,GTX Basic,Cancity,Lost,2017-01-02,2017-03-02,",
                  "D3,Darcel Schlecht,GTX Basic,Isdom,Closed Lost,2017-01-02,2017-03-03,",
                  "D4,Darcel Schlecht,GTX Basic,Isdom,won,2017-01-02,2017-03-04,50",
                  "D5,Darcel Schlecht,GTX Basic,Isdom,,2017-01-02,,",
                  ",Darcel Schlecht,GTX Basic,Isdom,Won,2017-01-02,2017-03-05,70")


def test_unmapped_and_blank_stages_and_blank_ids_are_row_problems(stages_export, pbm):
    """Each stage the mapping does not map, a blank stage and a blank deal id is a row problem with its fix."""
    data = read_export(stages_export, "maven", playbook=pbm)
    got = {(p.line, p.field): p.message for p in data.problems}
    assert set(got) == {(4, "deal_stage"), (5, "deal_stage"), (6, "deal_stage"), (7, "opportunity_id")}
    assert "'Closed Lost' is not a stage name" in got[4, "deal_stage"] and "add 'Closed Lost' to stages:" in got[4, "deal_stage"]
    assert "differs from 'Won' only in case" in got[5, "deal_stage"]  # exact names; the message says so
    assert got[6, "deal_stage"].startswith("stage: a value is required")
    assert got[7, "opportunity_id"].startswith("deal_id: a value is required; fill in the deal's id")
    with pytest.raises(Exception, match="Closed Lost"):
        read_export(stages_export, "maven", playbook=pbm, strict=True)


def test_unmapped_stages_make_every_outcome_figure_not_computable(stages_export, pbm):
    """No win rate, cycle, stage count, funnel or group outcome over the mapped rows only (it was 0.667 = 2/3)."""
    data = read_export(stages_export, "maven", playbook=pbm)
    k = kpis(data, pbm, lang="en")
    for kid in ("win_rate", "average_sales_cycle", "median_sales_cycle"):
        assert k.at[kid, "status"] == "not_computable"
        assert "3 values" in k.at[kid, "reason"] and "Closed Lost" in k.at[kid, "reason"]
    assert stage_counts(data, pbm) == {}
    rv = review(data, pbm, lang="en")
    assert "Closed Lost" in gap_of(rv.funnel)
    nc = review_json(rv)["not_computable"]
    assert "Closed Lost" in nc["stage_counts"] and review_json(rv)["kpis"]["stage_counts"] == {}
    by = breakdown(data, pbm, "owner", lang="en")
    assert by[["won", "lost", "open", "win_rate", "amount_won"]].isna().all().all()
    assert "deal stages could not be read: 3 values" in gap_of(by).lower()


def test_cli_strict_refuses_unmapped_stages(stages_export, capsys, monkeypatch):
    """The summary comes first and names the stage; --strict ends with exit 1, and without it no win rate is printed."""
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    assert main(["analyze", str(stages_export), "--source", "maven", "--no-progress", "--strict"]) == 1
    err = capsys.readouterr().err
    assert "deal_stage: 3" in err and "Closed Lost" in err and "opportunity_id: 1" in err
    assert main(["analyze", str(stages_export), "--source", "maven", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0.667" not in out and "66.7%" not in out and "unmapped 3" not in out


def test_unreadable_amounts_blank_every_amount_total(tmp_path, pbm):
    """Two of three won amounts unreadable ('n/a', '$12k'): amount_won is blank with the reason, never 1,054."""
    folder = export(tmp_path / "amounts",
                    "D1,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,1054",
                    "D2,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-02,n/a",
                    "D3,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-03,$12k")
    data = read_export(folder, "maven", playbook=pbm)
    for table in (breakdown(data, pbm, "owner", lang="en"), breakdown(data, pbm, "product", lang="en"),
                  monthly_trend(data, pbm, lang="en")):
        assert table["amount_won"].isna().all()
        assert table["won"].notna().all()  # only the amounts are blank
        assert "Amounts of won deals could not be read: 2 values" in gap_of(table)
    html = render_html(review(data, pbm, lang="en"))
    assert "1,054.0" not in html and "Amounts of won deals could not be read" in html


def test_identical_copy_counts_each_deal_once_and_says_so(tmp_path, pbm):
    """sales_pipeline.csv beside an identical copy: the Maven figures, 1,425 blank accounts (not 2,850), a notice."""
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copy(MAVEN / "sales_pipeline.csv", folder / "sales_pipeline.csv")
    shutil.copy(MAVEN / "sales_pipeline.csv", folder / "sales_pipeline_2.csv")
    data = read_export(folder, "maven", playbook=pbm)
    assert data.problems == ()
    k = kpis(data, pbm, lang="en")
    assert (k.at["win_rate", "numerator"], k.at["win_rate", "denominator"]) == (4238, 6711)
    q = quality_report(data, pbm, lang="en")
    assert q.count("blank_account") == 1425
    assert q.summary.at["duplicate_deal", "status"] == "found" and q.count("duplicate_deal") == 8800
    msg = q.summary.at["duplicate_deal", "message"]
    assert "counted once" in msg and "1C1I7A6R: sales_pipeline.csv line 2, sales_pipeline_2.csv line 2" in msg


def test_conflicting_rows_of_one_deal_are_a_row_problem(tmp_path, pbm, capsys, monkeypatch):
    """D1 Won on line 2 and Lost on line 4: a row problem naming both lines and the field; no win rate, no regression."""
    folder = export(tmp_path / "conflict",
                    "D1,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,100",
                    "D2,Moses Frase,GTX Basic,Cancity,Lost,2017-01-02,2017-03-02,",
                    "D1,Moses Frase,GTX Basic,Cancity,Lost,2017-01-02,2017-03-01,100")
    data = read_export(folder, "maven", playbook=pbm)
    (p,) = data.problems
    assert (p.line, p.field) == (4, "opportunity_id")
    assert "'D1' is also on line 2 of sales_pipeline.csv" in p.message and "stage Won vs Lost" in p.message
    k = kpis(data, pbm, lang="en")
    assert k.at["win_rate", "status"] == "not_computable" and "line 2" in k.at["win_rate", "reason"]
    assert quality_report(data, pbm, lang="en").count("stage_regression") == 0
    monkeypatch.setenv("SOPCOACH_LANG", "en")
    assert main(["analyze", str(folder), "--source", "maven", "--no-progress", "--strict"]) == 1
    assert "opportunity_id: 1" in capsys.readouterr().err


@pytest.mark.parametrize("source, folder", [("maven", "maven_crm_sales_opportunities"),
                                            ("salesforce", "salesforce_devorg_export_earthfink"),
                                            ("zoho", "zoho_crm_export_sample")])
def test_real_exports_have_every_stage_mapped_and_one_row_per_deal(source, folder, pbm):
    """The built-in mappings map every stage of the real exports, which hold each deal once: no new problem."""
    data = read_export(CRM / folder, source, playbook=pbm)
    assert data.problems == ()
    q = quality_report(data, pbm, lang="en")
    assert q.summary.at["duplicate_deal", "status"] == "clean" and q.count("unknown_stage") == 0


def test_unmapped_stage_of_a_stage_change_is_a_row_problem(tmp_path, pbm):
    """Salesforce's OpportunityHistory with one stage change to 'Closed - Duplicate' (not in the mapping):
    a row problem on StageName, and the funnel and win rate are not computable while it stands."""
    src = CRM / "salesforce_devorg_export_earthfink"
    folder = tmp_path / "sf"
    shutil.copytree(src, folder)
    history = folder / "OpportunityHistory.csv"
    lines = history.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace(",Qualification,", ",Closed - Duplicate,", 1)
    history.write_text("".join(lines), encoding="utf-8")
    data = read_export(folder, "salesforce", playbook=pbm)
    (p,) = data.problems
    assert (p.path.endswith("OpportunityHistory.csv"), p.line, p.field) == (True, 2, "StageName")
    assert "'Closed - Duplicate' is not a stage name" in p.message
    k = kpis(data, pbm, lang="en")
    assert k.at["win_rate", "status"] == "not_computable" and "Closed - Duplicate" in k.at["win_rate", "reason"]
    assert "Closed - Duplicate" in gap_of(review(data, pbm, lang="en").funnel)
