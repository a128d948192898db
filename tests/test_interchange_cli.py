"""`sopcoach import` and `sopcoach export`: summaries, banks that `check` accepts, Moodle XML."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from sopcoach.cli.main import main
from sopcoach.content.check import check_paths
from support import CASES, ROOT, SHARED

QUIZ = SHARED / "data" / "quiz"
GIFT_FILES = sorted((QUIZ / "gift").glob("*.gift"))


def _import(capsys, *args):
    code = main(["import", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_writes_a_bank_that_check_accepts(tmp_path, capsys):
    """Importing Moodle's GIFT fixture writes a bank that `sopcoach check` passes against the playbook."""
    out = tmp_path / "bank.yaml"
    code, _, _ = _import(capsys, QUIZ / "moodle_fixtures" / "moodle_fixture_questions.gift.txt", "-o", out)
    assert code == 0 and check_paths([out], ROOT) == []


def test_import_bank_has_a_questions_list(tmp_path, capsys):
    """The written file has a top-level 'questions:' list with the 8 imported questions."""
    from sopcoach.content.yaml_loader import load_yaml
    out = tmp_path / "bank.yaml"
    _import(capsys, QUIZ / "moodle_fixtures" / "moodle_fixture_questions.gift.txt", "-o", out)
    assert len(load_yaml(out).data["questions"]) == 8


def test_import_summary_counts_and_skipped_lines(tmp_path, capsys):
    """The summary says imported 8, skipped 1, and gives the essay's line and reason."""
    f = QUIZ / "moodle_fixtures" / "moodle_fixture_questions.gift.txt"
    _, out, _ = _import(capsys, f, "-o", tmp_path / "b.yaml")
    lines = out.splitlines()
    assert lines[0].endswith("moodle_fixture_questions.gift.txt: imported 8, skipped 1 (9 items, gift)")
    assert any(l.endswith(":2:1: skipped essay: essay (free text graded by hand): sopcoach cannot score it")
               for l in lines)


def test_import_every_teacher_file_sums_up(tmp_path, capsys):
    """Over the five real teachers' files, 38 items are imported and 10 skipped (48 items)."""
    _, out, _ = _import(capsys, *GIFT_FILES, "-o", tmp_path / "b.yaml")
    heads = [l for l in out.splitlines() if ": imported " in l]
    counts = [tuple(int(x) for x in l.split(": imported ")[1].replace(",", "").replace("(", "").split()[:4:2])
              for l in heads]
    assert len(heads) == 5 and sum(i for i, _ in counts) == 38 and sum(s for _, s in counts) == 10


def test_import_several_files_keeps_ids_unique(tmp_path, capsys):
    """Two imports of the same file into one bank give distinct ids (the bank passes check)."""
    f = CASES / "13_gift_numeric_tolerance.gift"
    out = tmp_path / "b.yaml"
    code, _, _ = _import(capsys, f, f, "-o", out)
    assert code == 0 and check_paths([out], ROOT) == []


def test_import_aiken_and_jupyterquiz_are_detected(tmp_path, capsys):
    """Aiken (.txt) and jupyterquiz (.json) are recognised without --format."""
    code, out, _ = _import(capsys, QUIZ / "moodle_fixtures" / "moodle_fixture_questions.aiken.txt",
                           QUIZ / "jupyterquiz" / "jupyterquiz_examples_questions.json", "-o", tmp_path / "b.yaml")
    assert code == 0 and "imported 2, skipped 0 (2 items, aiken)" in out and "(8 items, jupyterquiz)" in out


def test_aiken_with_braces_in_a_text_is_detected_as_aiken(tmp_path, capsys):
    """Option lines and an 'ANSWER:' line make a file Aiken even when a question text has ``{y}``."""
    f = tmp_path / "vars.txt"
    f.write_text("Is {y} a variable?\nA) yes\nB) no\nANSWER: A\n\nWhich?\nA) {x}\nB) x\nANSWER: B\n",
                 encoding="utf-8")
    code, out, _ = _import(capsys, f, "-o", tmp_path / "b.yaml")
    assert code == 0 and "imported 2, skipped 0 (2 items, aiken)" in out


def test_a_detected_format_importing_nothing_suggests_the_other(tmp_path, capsys):
    """A file detected as GIFT ($CATEGORY) whose items are all skipped, with Aiken's lines, suggests
    --format aiken; the reverse suggests --format gift."""
    f = tmp_path / "mixed.txt"
    f.write_text("$CATEGORY: sales\n\nIs {y} or {z} a variable?\nA) yes\nB) no\nANSWER: A\n", encoding="utf-8")
    code, out, _ = _import(capsys, f, "-o", tmp_path / "b.yaml")
    assert code == 1 and "imported 0, skipped 1 (1 items, gift)" in out
    assert out.strip().splitlines()[-1].endswith("the file also has option lines and 'ANSWER:' lines, as "
                                                 "aiken does: try --format aiken")
    g = tmp_path / "gift.txt"
    g.write_text("Pick {=a ~b}\nA) x\nANSWER: A\n", encoding="utf-8")
    _, out, _ = _import(capsys, g, "-o", tmp_path / "c.yaml")
    assert "(1 items, aiken)" in out and out.strip().endswith("try --format gift")
    _, out, _ = _import(capsys, g, "-o", tmp_path / "c.yaml", "--format", "aiken")
    assert "--format" not in out  # no hint when the format was given


def test_import_clause_and_section_options(tmp_path, capsys):
    """--clause and --section set the clause and default section of every question."""
    from sopcoach.content.yaml_loader import load_yaml
    out = tmp_path / "b.yaml"
    _import(capsys, CASES / "13_gift_numeric_tolerance.gift", "-o", out, "--clause", "crm-tracking",
            "--section", "imported")
    qs = load_yaml(out).data["questions"]
    assert {(q["section"], tuple(q["clauses"])) for q in qs} == {("imported", ("crm-tracking",))}


def test_import_unknown_clause_fails_check(tmp_path, capsys):
    """A --clause the playbook does not know is reported and the command exits 1."""
    code, _, err = _import(capsys, CASES / "13_gift_numeric_tolerance.gift", "-o", tmp_path / "b.yaml",
                           "--clause", "no-such-clause")
    assert code == 1 and "unknown clause id(s) no-such-clause" in err


def test_import_strict_fails_on_skipped_items(tmp_path, capsys):
    """--strict exits 1 when an item was skipped, writes nothing (an existing output file keeps its
    bytes) and says so last; without --strict the same file is written."""
    source, out = QUIZ / "moodle_fixtures" / "moodle_fixture_questions.gift.txt", tmp_path / "b.yaml"
    code, _, err = _import(capsys, source, "-o", out, "--strict")
    assert code == 1 and not out.exists() and "wrote" not in err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"sopcoach import: --strict: \d+ item\(s\) skipped, nothing written", last), last
    out.write_text("# a bank kept by hand\n", encoding="utf-8")
    assert _import(capsys, source, "-o", out, "--strict")[0] == 1
    assert out.read_text(encoding="utf-8") == "# a bank kept by hand\n"
    code, _, err = _import(capsys, source, "-o", out)
    assert code == 0 and "wrote" in err and out.read_text(encoding="utf-8").count("id:") > 1


def test_import_nothing_importable_exits_1(tmp_path, capsys):
    """A file with only an essay writes nothing and exits 1."""
    f = tmp_path / "essay.gift"
    f.write_text("::E::Why? {}\n", encoding="utf-8")
    code, _, err = _import(capsys, f, "-o", tmp_path / "b.yaml")
    assert code == 1 and "nothing written" in err and not (tmp_path / "b.yaml").exists()


def test_export_gift_round_trips_through_import(tmp_path, capsys):
    """`export --format gift` of the shipped bank imports back into a bank that check accepts."""
    gift, back = tmp_path / "cert.gift", tmp_path / "back.yaml"
    assert main(["export", str(ROOT / "quizzes" / "bank"), "--format", "gift", "-o", str(gift)]) == 0
    code, out, _ = _import(capsys, gift, "-o", back)
    assert code == 0 and "imported 104, skipped 0 (104 items, gift)" in out
    assert check_paths([back], ROOT) == []


def test_export_moodle_xml_is_well_formed(tmp_path, capsys):
    """`export --format moodle-xml` writes a <quiz> with a category per section and every question."""
    out = tmp_path / "cert.xml"
    assert main(["export", str(ROOT / "quizzes" / "bank"), "--format", "moodle-xml", "-o", str(out)]) == 0
    types = [q.get("type") for q in ET.parse(out).getroot()]
    assert types.count("category") == 5 and len(types) - 5 == 104


def test_export_moodle_xml_right_minus_wrong_grades(tmp_path, capsys):
    """Right-minus-wrong becomes +100/n_correct and -100/n_wrong grades."""
    out = tmp_path / "cert.xml"
    main(["export", str(ROOT / "quizzes" / "bank"), "--format", "moodle-xml", "-o", str(out)])
    q = next(q for q in ET.parse(out).getroot() if q.findtext("name/text") == "cr-step1-fields")
    assert [a.get("fraction") for a in q.findall("answer")] == ["33.3333333"] * 3 + ["-50"] * 2


def test_export_reports_what_moodle_cannot_hold(tmp_path, capsys):
    """Ordering distractors that Moodle XML cannot hold are named in the notes."""
    main(["export", str(ROOT / "quizzes" / "bank"), "--format", "moodle-xml", "-o", str(tmp_path / "c.xml")])
    assert "note: sp-step-order: Moodle's ordering type has no distractors; invoice not written" in \
        capsys.readouterr().out


def test_export_leaves_retired_questions_out(tmp_path, capsys):
    """A retired question is not exported unless --include-retired is given; the note says how many were left."""
    bank = tmp_path / "bank.yaml"
    text = (ROOT / "quizzes" / "bank" / "crm_use.yaml").read_text(encoding="utf-8")
    first = re.search(r"^  - id: (\S+)$", text, re.M)
    assert first is not None
    bank.write_text(text.replace(first.group(0), first.group(0) + "\n    retired: true", 1), encoding="utf-8")
    out = tmp_path / "b.gift"
    assert main(["export", str(bank), "--format", "gift", "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"::{first.group(1)}::" not in out.read_text(encoding="utf-8")
    assert "note: 1 retired question(s) left out" in printed.out
    assert main(["export", str(bank), "--format", "gift", "-o", str(out), "--include-retired"]) == 0
    assert f"::{first.group(1)}::" in out.read_text(encoding="utf-8")


def test_export_missing_bank_exits_1(tmp_path, capsys):
    """A bank path that does not exist is an error, exit 1."""
    assert main(["export", str(tmp_path / "nope.yaml"), "--format", "gift", "-o", str(tmp_path / "o")]) == 1


def test_import_requires_output(capsys):
    """-o is required: a usage error."""
    with pytest.raises(SystemExit) as exc:
        main(["import", "x.gift"])
    assert exc.value.code == 2
