"""The seeded simulator: a realistic export whose injected SOP breaches are the ground truth."""
from __future__ import annotations

from collections import Counter

import pytest

from sopcoach.analytics.compliance import check_compliance
from sopcoach.cli.main import main
from sopcoach.crm.quality import quality_report
from sopcoach.crm.reading import read_export
from sopcoach.crm.simulate import BREACH_KINDS, simulate
from sopcoach.errors import SimulationError
from support import ROOT


@pytest.fixture(scope="module")
def pbm():
    from sopcoach.content.playbook import load_playbook
    return load_playbook(ROOT / "playbook")


def found(comp) -> Counter:
    return Counter((r.check, r.deal_id, r.week if r.check == "cadence" else "")
                   for r in comp.findings.itertuples())


def truth(sim) -> Counter:
    return Counter((r.check, r.deal_id, r.week) for r in sim.truth.itertuples())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_injected_breach_is_found_and_nothing_else(pbm, tmp_path, seed):
    """Round trip: the compliance check finds exactly the breaches the simulator injected."""
    sim = simulate(pbm, tmp_path, seed=seed, deals=150, weeks=14)
    data = read_export(sim.folder, "simulated", playbook=pbm)
    comp = check_compliance(data, pbm, as_of=sim.as_of)
    assert found(comp) == truth(sim)


def test_every_breach_kind_is_injected(pbm, tmp_path):
    """By default two breaches of each kind are injected, and every check is checkable."""
    sim = simulate(pbm, tmp_path, seed=5)
    assert Counter(sim.truth["check"]) == {k: 2 for k in BREACH_KINDS}
    comp = check_compliance(read_export(sim.folder, "simulated", playbook=pbm), pbm, as_of=sim.as_of)
    assert set(comp.checks["status"]) == {"checked"}


def test_without_injected_breaches_the_company_is_compliant(pbm, tmp_path):
    """A simulation with no injected breach yields no finding at all."""
    sim = simulate(pbm, tmp_path, seed=4, breaches={})
    comp = check_compliance(read_export(sim.folder, "simulated", playbook=pbm), pbm, as_of=sim.as_of)
    assert sim.truth.empty and comp.findings.empty


def test_as_of_taken_from_the_export_gives_the_same_findings(pbm, tmp_path):
    """Analysing without the simulator's as-of (the export's latest timestamp) finds the same breaches."""
    sim = simulate(pbm, tmp_path, seed=6)
    comp = check_compliance(read_export(sim.folder, "simulated", playbook=pbm), pbm)
    assert found(comp) == truth(sim)


def test_same_seed_writes_identical_files(pbm, tmp_path):
    """The same seed gives byte-identical files; another seed does not."""
    a = simulate(pbm, tmp_path / "a", seed=9, deals=40, breaches={"authority": 1})
    b = simulate(pbm, tmp_path / "b", seed=9, deals=40, breaches={"authority": 1})
    c = simulate(pbm, tmp_path / "c", seed=10, deals=40, breaches={"authority": 1})
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    assert a.files[1].read_bytes() != c.files[1].read_bytes()


def test_export_looks_like_a_chinese_excel_csv(pbm, tmp_path):
    """The files are UTF-8 with BOM, Chinese headers, thousands separators and zero-padded ids."""
    sim = simulate(pbm, tmp_path, seed=1, deals=40, breaches={})
    raw = sim.files[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + "商机编号".encode())
    data = read_export(sim.folder, "simulated", playbook=pbm)
    assert data.deals["deal_id"].iloc[0] == "000001"
    assert data.problems == ()


def test_simulated_export_is_clean_data(pbm, tmp_path):
    """The simulated export has no data-quality finding (its faults are SOP breaches only)."""
    sim = simulate(pbm, tmp_path, seed=2, deals=60, breaches={})
    q = quality_report(read_export(sim.folder, "simulated", playbook=pbm), pbm)
    assert set(q.summary["status"]) <= {"clean", "not_checkable"}


def test_unknown_breach_kind_is_refused(pbm, tmp_path):
    """Asking for a breach kind that does not exist is refused with the known kinds."""
    with pytest.raises(SimulationError, match="unknown breach kinds"):
        simulate(pbm, tmp_path, breaches={"sla:nope": 1})


def test_too_few_deals_for_the_breaches_is_refused(pbm, tmp_path):
    """Asking for more breaches than the deals can carry is refused, not silently short."""
    with pytest.raises(SimulationError, match="could not inject"):
        simulate(pbm, tmp_path, deals=5, breaches={"authority": 20})


def test_cli_simulate_writes_the_export(tmp_path, capsys):
    """`sopcoach simulate FOLDER` writes the four files and prints the ground truth."""
    assert main(["simulate", str(tmp_path / "out"), "--seed", "3", "--deals", "80"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["产品.csv", "商机.csv", "跟进记录.csv", "销售人员.csv"]
    assert "sla:first_proposal" in capsys.readouterr().out
