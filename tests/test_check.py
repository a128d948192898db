"""`sopcoach check` leaves nothing wrong unreported (issue 14): practice files, tabs, alias bombs."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from sopcoach.content.check import check_paths
from sopcoach.content.yaml_loader import MAX_ALIASES, load_yaml
from support import ROOT

#: A "billion laughs" document: 9 levels of 9 aliases, ~400 bytes that expand to 9**9 strings.
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    + ["questions: [*i]", ""])


def _copy_content(tmp_path):
    shutil.copytree(ROOT / "playbook", tmp_path / "playbook")
    shutil.copytree(ROOT / "quizzes", tmp_path / "quizzes")
    return tmp_path


def _check_cli(content, *paths, timeout=120):
    return subprocess.run([sys.executable, "-m", "sopcoach.cli.main", "check", "--content", str(content),
                           *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_check_reports_a_broken_practice_file(tmp_path):
    """A typo in a practice file (which every learner page loads) fails check with file, line, field, fix."""
    content = _copy_content(tmp_path)
    f = content / "quizzes" / "practice" / "2_process.yaml"
    text = f.read_text(encoding="utf-8")
    line = text.splitlines().index("    explanation:") + 1
    f.write_text(text.replace("    explanation:", "    explaination:", 1), encoding="utf-8")
    problems = check_paths([], content)
    assert [(p.path.endswith("quizzes/practice/2_process.yaml"), p.line, p.field) for p in problems] == [
        (True, line, "questions[0].explaination")]
    assert "unknown field 'explaination'; check the spelling or remove it" in problems[0].message
    proc = _check_cli(content)
    assert proc.returncode == 1
    assert f"2_process.yaml:{line}:5: questions[0].explaination: unknown field" in proc.stdout


def test_a_tab_in_the_indentation_is_named(tmp_path):
    """A tab indenting a key is reported as a tab at its line and column, with the fix."""
    f = tmp_path / "bank.yaml"
    f.write_text("questions:\n  - id: q1\n  \ttype: true_false\n", encoding="utf-8")
    [p] = load_yaml(f).problems
    assert (p.line, p.column) == (3, 3)
    assert p.message.startswith("a tab character in the indentation")
    assert "replace the tab with spaces" in p.message
    proc = _check_cli(ROOT, f)
    assert proc.returncode == 1
    assert "bank.yaml:3:3: a tab character in the indentation" in proc.stdout


def _run_bounded(code: str) -> str:
    """Run ``code`` in a new Python process (60 s at most: the unbounded loaders ran for minutes)."""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_an_alias_bomb_is_refused_by_the_loader(tmp_path):
    """Billion laughs and a self-referring alias are problems, never expanded; a few aliases still load."""
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    out = _run_bounded("from sopcoach.content.yaml_loader import load_yaml\n"
                       f"doc = load_yaml({str(tmp_path / 'bomb.yaml')!r})\n"
                       "print(doc.data is None, [p.message for p in doc.problems])")
    assert out.startswith("True [")
    assert f"more than {MAX_ALIASES} alias uses (*name); refused as a possible alias bomb" in out
    loop = load_yaml("loop.yaml", "a: &x [1, *x]\n")
    assert loop.data is None and "refers to the node that contains it" in loop.problems[0].message
    few = load_yaml("few.yaml", "base: &b {x: 1}\none: *b\ntwo: {<<: *b, y: 2}\n")
    assert few.problems == [] and few.data == {"base": {"x": "1"}, "one": {"x": "1"}, "two": {"x": "1", "y": "2"}}


def test_an_alias_bomb_is_refused_by_the_playbook_editor_loader(tmp_path):
    """The editor's round-trip loader (ruamel) refuses the bomb before ruamel expands it."""
    (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    out = _run_bounded("from pathlib import Path\n"
                       "from sopcoach.authoring.yaml_writer import load_round_trip\n"
                       "try:\n"
                       f"    load_round_trip(Path({str(tmp_path / 'bomb.yaml')!r}).read_text())\n"
                       "except Exception as exc:\n"
                       "    print('refused:', exc)\n")
    assert out.startswith("refused:") and "alias bomb" in out


def test_check_refuses_an_alias_bomb_in_a_content_folder(tmp_path):
    """`sopcoach check` on content with a billion-laughs practice file finishes with the refusal."""
    content = _copy_content(tmp_path)
    (content / "quizzes" / "practice" / "bomb.yaml").write_text(BILLION_LAUGHS, encoding="utf-8")
    proc = _check_cli(content, timeout=60)  # hangs for minutes without the bound
    assert proc.returncode == 1
    assert "bomb.yaml:3:1: c[0][0][8]: more than" in proc.stdout and "alias bomb" in proc.stdout


def test_an_alias_bomb_points_at_the_alias_use_not_the_anchor():
    """The limit is blamed on the key whose value uses the alias (line 3, ``c``), not on the ``&a``
    anchor of line 1 that every expansion shares; a loop on the key that holds the alias."""
    [p] = load_yaml("bomb.yaml", BILLION_LAUGHS).problems
    assert (p.line, p.column, p.field) == (3, 1, "c[0][0][8]")
    [p] = load_yaml("loop.yaml", "base: 1\nloop: &l {k: *l}\n").problems
    assert (p.line, p.column, p.field) == (2, 11, "loop.k")


def _break_slas(content, how: str):
    """Make the playbook's slas.yaml fail to parse: a tab indenting a key, or a billion-laughs head."""
    f = content / "playbook" / "slas.yaml"
    text = f.read_text(encoding="utf-8")
    if how == "tab":
        line = text.splitlines().index("    start_event: customer_email_received") + 1
        f.write_text(text.replace("    start_event: customer_email_received", "\tstart_event: customer_email_received",
                                  1), encoding="utf-8")
        return f"slas.yaml:{line}:1: a tab character in the indentation"
    f.write_text(BILLION_LAUGHS.replace("questions: [*i]\n", "") + text, encoding="utf-8")
    return "slas.yaml:3:1: c[0][0][8]: more than 100 alias uses"


@pytest.mark.parametrize("how", ["tab", "bomb"])
def test_a_playbook_file_that_does_not_parse_reports_only_its_own_cause(tmp_path, how):
    """The part the unparsed file holds is not also reported missing (a follow-on): one problem, located."""
    content = _copy_content(tmp_path)
    expected = _break_slas(content, how)
    proc = _check_cli(content, timeout=60)
    assert proc.returncode == 1
    assert expected in proc.stdout and "missing from the playbook" not in proc.stdout
    assert len([line for line in proc.stdout.splitlines() if not line.startswith(" ")]) == 1
    assert proc.stderr.rstrip().endswith("\n1 problem(s)")



def test_a_part_really_missing_is_still_reported(tmp_path):
    """Without slas.yaml (every other file parses) the missing part is reported, naming the folder."""
    from sopcoach.content.playbook import load_playbook
    from sopcoach.errors import ContentError
    content = _copy_content(tmp_path)
    (content / "playbook" / "slas.yaml").unlink()
    with pytest.raises(ContentError) as exc:
        load_playbook(content / "playbook")
    assert [(p.field, p.message) for p in exc.value.problems] == [("slas", "part 'slas' is missing from the playbook")]


ALL_OF_THE_ABOVE = """questions:
  - id: q-aota
    type: multiple_choice
    section: sales_process
    clauses: [purpose]
    text: {zh-CN: 哪些正确?, en: Which are right?}
    options:
      - {id: a, text: {zh-CN: 甲, en: A}, correct: true}
      - {id: b, text: {zh-CN: 乙, en: B}}
      - {id: c, text: {zh-CN: 丙, en: C}}
      - {id: d, text: {zh-CN: 以上都是, en: All of the above}}
      - {id: e, text: {zh-CN: 以上皆非, en: None of the above}}
  - id: q-pinned
    type: single_choice
    section: sales_process
    clauses: [purpose]
    text: {zh-CN: 哪个?, en: Which?}
    options:
      - {id: z, text: {zh-CN: 都对, en: Both}, pin: last, correct: true}
      - {id: x, text: {zh-CN: 甲, en: A}}
      - {id: y, text: {zh-CN: 乙, en: B}}
"""


def test_options_referring_to_the_others_stay_last_in_200_draws(tmp_path, playbook):
    """'All of the above' and 'None of the above' (and a `pin: last` option) are never shuffled forward."""
    from sopcoach.certification.exam import draw
    from sopcoach.content.quizbank import Blueprint, load_bank

    f = tmp_path / "aota.yaml"
    f.write_text(ALL_OF_THE_ABOVE, encoding="utf-8")
    bank = load_bank([f], playbook)
    bp = Blueprint.model_validate({"id": "x", "title": {"zh-CN": "x", "en": "x"}, "instructions": {"zh-CN": "x", "en": "x"},
                                   "pass_mark": "0.9", "time_limit_minutes": 10, "max_attempts": 1,
                                   "wait_between_attempts_hours": 0,
                                   "sections": [{"id": "sales_process", "title": {"zh-CN": "x", "en": "x"}, "draw": 2}]})
    firsts = set()
    for seed in range(200):
        orders = draw(bank, bp, seed).option_orders
        assert orders["q-aota"][-2:] == ["d", "e"]
        assert orders["q-pinned"][-1] == "z"
        firsts.add(orders["q-aota"][0])
    assert firsts == {"a", "b", "c"}  # the other options are still shuffled


def test_check_warns_on_an_unpinned_all_of_the_above(tmp_path):
    """check names each unpinned option that refers to the others (a warning: exit 0); a pinned one is quiet."""
    f = tmp_path / "aota.yaml"
    f.write_text(ALL_OF_THE_ABOVE, encoding="utf-8")
    problems = check_paths([f], ROOT)
    assert [(p.severity, p.line, p.field) for p in problems] == [
        ("warning", 11, "questions[0].options[3]"), ("warning", 12, "questions[0].options[4]")]
    assert "add 'pin: last' to the option" in problems[0].message
    proc = _check_cli(ROOT, f)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "aota.yaml:11:9: questions[0].options[3]: warning: option 'd' refers to the other options" in proc.stdout


def test_a_bad_playbook_value_is_one_problem_with_its_follow_ons_folded(tmp_path):
    """One bad playbook value: one problem, its follow-on problems in question files counted under it."""
    content = _copy_content(tmp_path)
    f = content / "playbook" / "customers.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("min_weekly_follow_ups: 3", "min_weekly_follow_ups: three", 1),
                 encoding="utf-8")
    [problem] = check_paths([], content)
    assert problem.path.endswith("playbook/customers.yaml") and problem.field == "tiers[0].min_weekly_follow_ups"
    head, note = str(problem).split("\n")
    assert "unable to parse string as an integer (got 'three')" in head
    n = int(re.match(r"    (\d+) follow-on problem", note).group(1))
    assert n > 10
    proc = _check_cli(content)
    assert proc.returncode == 1 and "1 problem(s)" in proc.stderr
    assert f"{n} follow-on problem(s)" in proc.stdout
