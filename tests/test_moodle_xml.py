"""Moodle XML import: a hand-made <quiz> with every type, the shipped bank's export read back, safe XML."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from sopcoach.cli.main import main
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.errors import ConfigError
from sopcoach.interchange import detect_format, import_file
from sopcoach.interchange.moodle_xml import import_moodle_xml
from support import ROOT, SHARED

SAMPLE = Path(__file__).parent / "fixtures" / "interchange" / "moodle_sample.xml"


@pytest.fixture(scope="module")
def sample():
    return import_moodle_xml(SAMPLE)


def test_sample_counts_add_up(sample):
    """9 questions (2 category entries are not items): 6 imported, description/essay/calculated skipped."""
    assert (sample.imported, len(sample.skipped), len(sample.items)) == (6, 3, 9)
    assert [(i.line, i.kind) for i in sample.skipped] == [(53, "description"), (57, "essay"), (61, "item")]
    assert sample.skipped[2].reason.startswith("question type 'calculated' is not one sopcoach can import")


def test_sample_types_ids_and_sections(sample):
    """Types map back from Moodle's; the name is the id; categories become sections."""
    assert [(q["id"], q["type"], q["section"]) for q in sample.questions] == [
        ("Stage-after-Lead", "single_choice", "Sales-SOP-Pipeline"),
        ("Required-fields", "multiple_choice", "Sales-SOP-Pipeline"),
        ("TF", "true_false", "Sales-SOP-Pipeline"),
        ("CRM-name", "short_answer", "KPI"),
        ("Win-rate", "numeric", "KPI"),
        ("Match", "matching", "KPI")]


def test_cdata_html_and_entities_become_text(sample):
    """CDATA HTML and escaped HTML (with &amp;amp;) both become plain text; defaultgrade 2 is the points."""
    q = sample.questions[0]
    assert q["text"]["en"] == "Which stage comes after Lead & before Proposal?"
    assert q["explanation"]["en"] == "Qualify & then Proposal."
    assert [(o["text"]["en"], o.get("correct", False)) for o in q["options"]] == [
        ("Qualify", True), ("Closed Won", False), ("Churned", False)]
    assert q["options"][0]["feedback"]["en"] == "Right." and q["points"] == "2"


def test_fractions_decide_single_and_multiple(sample):
    """<single>false</single> with +50/+50/-100 is right-minus-wrong multiple choice with keys a, b."""
    q = sample.questions[1]
    assert [(o["id"], o["correct"]) for o in q["options"]] == [("a", True), ("b", True), ("c", False)]


def test_truefalse_shortanswer_numerical_matching(sample):
    """The other types keep their keys, weights, tolerance and distractors."""
    tf, sa, num, match = sample.questions[2:]
    assert (tf["answer"], tf["feedback_true"]["en"], tf["feedback_false"]["en"]) == (True, "Yes, 7 days.", "No.")
    assert [(a["text"], a.get("weight")) for a in sa["answers"]] == [("Zoho", None), ("Zoho CRM", Fraction(1, 2))]
    assert (str(num["answer"]), str(num["tolerance"])) == ("63.2", "0.05")
    assert [(p["prompt"]["en"], p["answer"]["en"]) for p in match["pairs"]] == [
        ("Lead", "Contacted"), ("Qualify", "Needs confirmed")]
    assert [d["text"]["en"] for d in match["distractors"]] == ["Invoice paid"]


def test_single_choice_without_full_mark_is_skipped_with_reason():
    """<single>true</single> with no 100% answer is reported, not imported with a made-up key."""
    xml = ('<quiz>\n<question type="multichoice"><name><text>Q</text></name>\n<questiontext><text>Q?</text>'
           '</questiontext><single>true</single><answer fraction="50"><text>x</text></answer>'
           '<answer fraction="0"><text>y</text></answer></question></quiz>')
    r = import_moodle_xml("q.xml", xml)
    assert (r.imported, r.skipped[0].line) == (0, 2)
    assert "no answer worth 100%" in r.skipped[0].reason


def _comparable(q):
    """What Moodle XML carries of a question: id, type, section, texts (scenario in the text), keys, weights."""
    d = q.model_dump(exclude={"clauses", "scenario", "derived", "key_from", "answer_from", "unit", "text"})
    d["text"] = q.text.en if q.scenario is None else q.scenario.en + "\n\n" + q.text.en
    for key in ("options", "items"):
        for o in d.get(key) or []:
            o.pop("id"), o.pop("value", None)
    d.pop("distractors", None) if q.type == "ordering" else None
    return d


def test_shipped_bank_round_trips_through_moodle_xml(tmp_path, capsys):
    """export --format moodle-xml of the 104-question bank, then import: the same questions come back."""
    xml, back = tmp_path / "bank.xml", tmp_path / "back.yaml"
    assert main(["export", str(ROOT / "quizzes" / "bank"), "--format", "moodle-xml", "-o", str(xml)]) == 0
    assert main(["import", str(xml), "-o", str(back), "--strict"]) == 0
    assert "imported 104, skipped 0 (104 items, moodle-xml)" in capsys.readouterr().out
    pb = load_playbook(ROOT / "playbook")
    before = {k: q for k, q in load_bank(sorted((ROOT / "quizzes" / "bank").glob("*.yaml")), pb).questions.items()
              if q.variant is None}  # templates are not exported (no fixed key)
    after = load_bank([back], pb).questions
    assert list(after) == list(before)
    assert [_comparable(q) for q in after.values()] == [_comparable(q) for q in before.values()]


def test_entity_expansion_is_refused(tmp_path):
    """A billion-laughs style entity declaration is refused (defusedxml), reported as a problem."""
    f = tmp_path / "bomb.xml"
    f.write_text('<?xml version="1.0"?>\n<!DOCTYPE quiz [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>\n'
                 "<quiz><question type=\"truefalse\"><questiontext><text>&b;</text></questiontext></question></quiz>")
    r = import_file(f)
    assert r.imported == 0 and len(r.problems) == 1 and "refused XML" in r.problems[0].message


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("bank.gift", '<?xml version="1.0"?>\n<quiz><question type="category"/></quiz>', "moodle-xml"),
    ("bank.txt", "\ufeff<quiz>\n</quiz>", "moodle-xml"),
    ("q.xml", '[{"question": "x", "type": "numeric", "answers": []}]', "jupyterquiz"),
    ("q.json", "Q?\nA) x\nB) y\nANSWER: A\n", "aiken"),
    ("q.aiken.txt", "::T:: 2+2? {=4 ~5}\n", "gift"),
    ("q.txt", "$CATEGORY: a\n\n::T:: Pick {=yes ~no}\n", "gift"),
])
def test_format_comes_from_the_content_not_the_name(name, text, fmt):
    """The extension is ignored: XML with <quiz>, JSON, Aiken and GIFT are told by their syntax."""
    assert detect_format(name, text) == fmt


@pytest.mark.parametrize(("text", "message"), [
    ("<html><body>hi</body></html>", "XML with root <html> is not a question format sopcoach imports"),
    ('<?xml version="1.0"?>\n<!-- x -->\n<questions/>', "XML with root <questions> is not a question format"),
    ("just some notes\nwithout answers\n", "cannot tell the format from the content"),
])
def test_unknown_content_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        detect_format("x.gift", text)


LINCS = SHARED / "data" / "quiz" / "moodle_xml" / "lincs_l2a_confidentiality_moodle_backup_questions.xml"


def test_moodle_backup_questions_xml_imports_all_twenty(tmp_path, capsys):
    """The LINCS course backup's questions.xml (<question_categories>): 20 questions in 4 categories."""
    assert main(["import", str(LINCS), "-o", str(tmp_path / "b.yaml"), "--strict"]) == 0
    assert "imported 20, skipped 0 (20 items, moodle-xml)" in capsys.readouterr().out
    r = import_file(LINCS)
    assert [q["type"] for q in r.questions].count("single_choice") == 12
    assert [q["type"] for q in r.questions].count("multiple_choice") == 6
    assert [(q["id"], q["answer"]) for q in r.questions if q["type"] == "true_false"] == [
        ("1", True), ("Scenario-2-2", False)]
    first = r.questions[0]
    assert (first["id"], first["section"]) == ("Scenario-3", "Default-for-L2A-Legal-Issues-v2")
    assert first["text"]["en"].startswith("Scenario #3\n\nA program keeps student information in a locked file")
    assert [(o["text"]["en"], o.get("correct", False)) for o in first["options"]] == [("Yes", False), ("No", True)]


def test_moodle_backup_partial_credit_is_exact():
    """Backup fractions 0.3333333 and 0.25 read as exactly 1/3 and 1/4."""
    r = import_file(LINCS)
    shiree = next(q for q in r.questions if q["id"] == "Case-Study-Shiree")
    assert [o.get("weight") for o in shiree["options"]] == [Fraction(1, 3), None, Fraction(1, 3), Fraction(1, 3)]
    last = [q for q in r.questions if q["type"] == "multiple_choice"][-1]
    assert [o.get("weight") for o in last["options"]] == [Fraction(1, 4)] * 4


def test_moodle_xml_named_gift_is_not_read_as_gift(tmp_path, capsys):
    """A Moodle XML file saved as .gift imports as Moodle XML; --strict exits 1 for the 3 skipped items."""
    f = tmp_path / "export.gift"
    f.write_bytes(SAMPLE.read_bytes())
    assert main(["import", str(f), "-o", str(tmp_path / "b.yaml"), "--strict"]) == 1
    out = capsys.readouterr().out
    assert "export.gift: imported 6, skipped 3 (9 items, moodle-xml)" in out
    assert out.count(": skipped ") == 3


PINNED_BANK = """\
questions:
  - id: cm-pinned
    type: single_choice
    section: customer_management
    clauses: [service-standards]
    text: {zh-CN: 哪些属于服务标准?, en: Which are service standards?}
    options:
      - {id: a, text: {zh-CN: 全部, en: All of the above}, correct: true, pin: last}
      - {id: b, text: {zh-CN: 24小时内回复邮件, en: Reply to e-mail within 24 hours}}
      - {id: c, text: {zh-CN: 2个工作日内提供初步方案, en: First solution within 2 working days}}
  - id: cm-free
    type: single_choice
    section: customer_management
    clauses: [service-standards]
    text: {zh-CN: 邮件几小时内回复?, en: Reply to an e-mail within how many hours?}
    options:
      - {id: a, text: {zh-CN: '24', en: '24'}, correct: true}
      - {id: b, text: {zh-CN: '48', en: '48'}}
"""


def test_pinned_option_turns_shuffling_off_and_comes_back_pinned(tmp_path, capsys):
    """A question with `pin: last` is exported unshuffled, pinned option last, with a note; import pins it again."""
    bank, xml, back = tmp_path / "bank.yaml", tmp_path / "bank.xml", tmp_path / "back.yaml"
    bank.write_text(PINNED_BANK, encoding="utf-8")
    assert main(["export", str(bank), "--format", "moodle-xml", "-o", str(xml)]) == 0
    out = capsys.readouterr()
    assert "cm-pinned: option a is pinned last and Moodle cannot pin one option" in out.out + out.err
    text = xml.read_text(encoding="utf-8")
    pinned, free = text.split("<idnumber>cm-free</idnumber>")[0], text.split("<idnumber>cm-pinned</idnumber>")[1]
    assert "<shuffleanswers>false</shuffleanswers>" in pinned and "<shuffleanswers>true</shuffleanswers>" in free
    assert pinned.index("Reply to e-mail") < pinned.index("First solution") < pinned.index("All of the above")
    assert main(["import", str(xml), "-o", str(back), "--strict"]) == 0
    pb = load_playbook(ROOT / "playbook")
    questions = load_bank([back], pb).questions
    got = questions["cm-pinned"].options
    assert [(o.text.en, o.pin, o.correct) for o in got] == [
        ("Reply to e-mail within 24 hours", None, False), ("First solution within 2 working days", None, False),
        ("All of the above", "last", True)]
    assert [o.pin for o in questions["cm-free"].options] == [None, None]
