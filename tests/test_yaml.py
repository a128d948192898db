"""The YAML loader keeps literal text, rejects duplicate keys and locates every problem."""
from __future__ import annotations

from pydantic import BaseModel

from sopcoach.content.yaml_loader import load_yaml, validate
from support import CASES


class _Region(BaseModel):
    regions: list[str]


def test_norway_codes_stay_text():
    """Case 01: NO/Yes/No in string fields keep their literal text."""
    doc = load_yaml(CASES / "01_yaml_norway_yes_no.yaml")
    assert doc.problems == []
    assert doc.data["regions"] == ["DE", "NO", "SE"]
    q = doc.data["questions"][0]
    assert q["options"] == ["Yes", "No", "Only at quarter end"]
    assert q["answer"] == "No"


def test_boolean_field_still_reads_yes_as_true():
    """Case 01: a field declared boolean may still take `yes`."""

    class Tier(BaseModel):
        name: str
        requires_approval: bool

    doc = load_yaml(CASES / "01_yaml_norway_yes_no.yaml")
    tier = Tier.model_validate(doc.data["customer_tiers"][0])
    assert tier.requires_approval is True and tier.name == "Gold"


def test_leading_zero_codes_stay_text_and_numbers_are_decimal():
    """Case 02: codes 010/020/08 stay text; a numeric 07 is decimal 7, never octal."""

    class St(BaseModel):
        code: str
        name: str

    class FU(BaseModel):
        gold_days: int

    doc = load_yaml(CASES / "02_yaml_leading_zeros.yaml")
    stages = [St.model_validate(s) for s in doc.data["stages"]]
    assert [s.code for s in stages] == ["010", "020", "08"]
    assert FU.model_validate(doc.data["follow_up"]).gold_days == 7


def test_leading_zero_codes_survive_a_round_trip(tmp_path):
    """Case 02: load -> save -> load keeps the stage order and the code-to-stage mapping."""
    import yaml
    doc = load_yaml(CASES / "02_yaml_leading_zeros.yaml")
    out = tmp_path / "again.yaml"
    out.write_text(yaml.safe_dump(doc.data, allow_unicode=True), encoding="utf-8")
    again = load_yaml(out).data
    assert [(s["code"], s["name"]) for s in again["stages"]] == [
        ("010", "Lead"), ("020", "Qualify"), ("08", "Legacy import")]


def test_duplicate_key_is_rejected_with_both_lines():
    """Case 04: a repeated mapping key is an error naming its line and the first definition."""
    doc = load_yaml(CASES / "04_yaml_duplicate_keys.yaml")
    assert [str(p.message) for p in doc.problems] == [
        "duplicate key 'qualify' at line 6 (first defined at line 2); keep one definition"]
    assert doc.problems[0].line == 6


def test_schema_error_points_at_line_and_field(tmp_path):
    """A wrong type is reported with file, line, column and field path."""
    f = tmp_path / "r.yaml"
    f.write_text("regions:\n  - DE\n  - [NO]\n", encoding="utf-8")
    doc = load_yaml(f)
    assert validate(_Region, doc) is None
    (p,) = doc.problems
    assert (p.line, p.column, p.field) == (3, 5, "regions[1]")
    assert str(p).startswith(f"{doc.path}:3:5: regions[1]: ")


def test_syntax_error_is_located(tmp_path):
    """A YAML syntax error becomes a located problem, not an exception."""
    f = tmp_path / "bad.yaml"
    f.write_text("a: [1, 2\nb: 3\n", encoding="utf-8")
    doc = load_yaml(f)
    assert doc.data is None and len(doc.problems) == 1
    assert doc.problems[0].line >= 2 and "syntax" in doc.problems[0].message
