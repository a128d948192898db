"""The shipped playbook and bank: complete, clean, and keyed from the playbook."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from decimal import Decimal

import pytest

from sopcoach.content.check import check_paths
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import QUESTION_TYPES, Numeric, SingleChoice, load_bank, load_blueprint
from sopcoach.errors import ContentError
from support import ROOT, SHARED

FIXTURES = ROOT / "tests" / "fixtures"


def seed_refs() -> set[str]:
    text = (SHARED / "seed" / "CLAUSES.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| (seed:[\d.]+) \|", text, flags=re.M))


def test_clause_index_is_read():
    """The clause index yields the 24 seed references."""
    assert len(seed_refs()) == 24


def test_every_seed_reference_has_a_clause(playbook):
    """Every seed:N of CLAUSES.md is the source of an active playbook clause."""
    assert seed_refs() - playbook.seed_refs() == set()


def test_every_seed_reference_is_examined(playbook, bank):
    """Every seed:N is examined by at least one question of the certification bank."""
    examined = {playbook.clause(c).source for q in bank.questions.values() for c in q.clauses}
    assert seed_refs() - examined == set()


def test_company_settings_are_explicit(playbook):
    """Values the source leaves open are company-setting clauses with a rationale."""
    settings = [c for c in playbook.clauses if c.source == "company-setting"]
    assert len(settings) >= 5 and all(c.rationale for c in settings)
    assert playbook.tier("A").min_weekly_follow_ups == 3
    assert playbook.clause(playbook.tier("B").cadence_clause).source == "company-setting"


def test_stages_are_ordered_with_responsible_roles(playbook):
    """seed:1.1.2: the stages run in order, each with the role the source names."""
    roles = {s.id: s.responsible_role for s in playbook.stages}
    assert roles["first_contact"] == "sales_rep" and roles["payment_collection"] == "finance"
    assert [s.id for s in playbook.stages][0] == "first_contact"


def test_sla_units_are_explicit(playbook):
    """SLAs of seed:1.2 carry their unit: 24 elapsed hours, 3 and 5 working days, 30 calendar days."""
    got = {s.id: (s.limit.value, s.limit.unit.value) for s in playbook.slas}
    assert got["email_reply"] == (24, "elapsed_hours")
    assert got["first_proposal"] == (3, "working_days")
    assert got["delivery"] == (5, "working_days")
    assert got["satisfaction_call"] == (30, "calendar_days")


def test_calendar_knows_the_make_up_sunday(playbook):
    """The business calendar treats Sunday 2025-09-28 as a working day and 2025-10-01 as a holiday."""
    from datetime import date
    cal = playbook.business_calendar()
    assert cal.is_working_day(date(2025, 9, 28)) and not cal.is_working_day(date(2025, 10, 1))


def test_bank_size_types_and_scenarios(bank, blueprint):
    """At least 80 questions, every type, at least 10 scenario items, twice each section's draw."""
    qs = list(bank.questions.values())
    assert len(qs) >= 80
    assert {q.type for q in qs} == set(QUESTION_TYPES)
    assert sum(q.is_scenario for q in qs) >= 10
    for s in blueprint.sections:
        assert len(bank.in_section(s.id)) >= 2 * s.draw


def test_blueprint_pass_mark_is_ninety_percent(blueprint):
    """seed:3.3.1: the pass mark is exactly 0.9, inclusive."""
    from fractions import Fraction
    assert blueprint.pass_fraction == Fraction(9, 10)


def test_check_is_clean_on_shipped_content():
    """`sopcoach check` reports no problem on the shipped playbook and bank and exits 0."""
    assert check_paths([], ROOT) == []
    proc = subprocess.run([sys.executable, "-m", "sopcoach.cli.main", "check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_prints_located_problems_and_exits_1():
    """`sopcoach check FILE` prints path:line:column: message and exits 1."""
    proc = subprocess.run([sys.executable, "-m", "sopcoach.cli.main", "check",
                           "tests/fixtures/bad_duplicate_question_id.yaml"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert ("tests/fixtures/bad_duplicate_question_id.yaml:8:9: questions[1].id: duplicate question id "
            "'q-dup' (first defined at tests/fixtures/bad_duplicate_question_id.yaml:2)") in proc.stdout


def test_pass_mark_written_as_percent_is_explained():
    """A pass mark of 90 is refused with the fix: write 0.9 for 90%."""
    with pytest.raises(ContentError) as err:
        load_blueprint(FIXTURES / "bad_pass_mark_percent.yaml")
    assert "exam.pass_mark: pass_mark must be in (0, 1] (got 90); write 0.9 for 90%" in str(err.value)


def test_norway_options_stay_text_in_a_bank(playbook):
    """Case 01 in bank form: options Yes/No stay text; the key is the option 'No'."""
    bank = load_bank([FIXTURES / "bad_norway_option.yaml"], playbook)
    q = bank["q-approve-01"]
    assert [o.text.en for o in q.options] == ["Yes", "No", "Only at quarter end"]
    assert [o.id for o in q.options if o.correct] == ["b"]


def _copy_content(tmp_path):
    shutil.copytree(ROOT / "playbook", tmp_path / "playbook")
    shutil.copytree(ROOT / "quizzes", tmp_path / "quizzes")
    return tmp_path


def _set_yaml_value(path, pattern: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed, n = re.subn(pattern, new, text, count=1, flags=re.S)
    assert n == 1, f"pattern not found in {path}"
    path.write_text(changed, encoding="utf-8")


def test_derived_keys_follow_the_playbook(tmp_path, bank):
    """Changing the proposal SLA and the A-tier cadence in the playbook changes the derived keys."""
    derived_sla = [q for q in bank.questions.values() if isinstance(q, Numeric) and q.answer_from == "sla.first_proposal.value"]
    derived_tier = [q for q in bank.questions.values()
                    if getattr(q, "answer_from", None) == "tier.A.min_weekly_follow_ups"
                    or getattr(q, "key_from", None) == "tier.A.min_weekly_follow_ups"]
    assert derived_sla and derived_tier
    root = _copy_content(tmp_path)
    _set_yaml_value(root / "playbook" / "slas.yaml",
                    r"(id: first_proposal.*?value: )3\b", r"\g<1>4")
    _set_yaml_value(root / "playbook" / "customers.yaml",
                    r"(id: A\b.*?min_weekly_follow_ups: )3\b", r"\g<1>4")
    pb = load_playbook(root / "playbook")
    assert pb.sla("first_proposal").limit.value == 4 and pb.tier("A").min_weekly_follow_ups == 4
    try:
        new = load_bank(root / "quizzes" / "bank", pb)
    except ContentError as exc:  # a key_from question without a matching option is reported
        assert "key_from 'tier.A.min_weekly_follow_ups' is 4" in str(exc)
        return
    for q in derived_sla:
        assert new[q.id].answer == 4
    for q in derived_tier:
        nq = new[q.id]
        if isinstance(nq, Numeric):
            assert nq.answer == 4
        else:
            assert [o.value for o in nq.options if o.correct] == [Decimal(4)]


def test_key_from_without_matching_option_is_an_error(tmp_path, bank):
    """When the playbook value matches no option any more, loading the bank names the question."""
    key_q = next(q for q in bank.questions.values() if isinstance(q, SingleChoice) and q.key_from
                 and q.key_from.startswith("sla.") and q.key_from.endswith(".value"))
    sla_id = key_q.key_from.split(".")[1]
    root = _copy_content(tmp_path)
    _set_yaml_value(root / "playbook" / "slas.yaml", rf"(id: {sla_id}\b.*?value: )\d+", r"\g<1>97")
    pb = load_playbook(root / "playbook")
    with pytest.raises(ContentError) as err:
        load_bank(root / "quizzes" / "bank", pb)
    assert f"key_from '{key_q.key_from}' is 97 in the playbook, but 0 options match it" in str(err.value)
