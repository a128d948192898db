"""Honest sources (issue 15, item 5): what the SOP states cites it, the rest is marked as the company's.

The SOP is /work/shared/seed/sales_sop_source.zh.md; an item whose provenance is ``seed`` must quote it,
stages follow its list (seed:2.1.1), and additions or elaborations carry a rationale.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from sopcoach.content.check import check_paths, provenance_summary
from sopcoach.content.playbook import load_playbook
from sopcoach.errors import ContentError
from support import ROOT, SHARED, edit_file as replace

SOP = re.sub(r"<!--.*?-->", "", (SHARED / "seed" / "sales_sop_source.zh.md").read_text(encoding="utf-8"), flags=re.S)


def normalise(text: str) -> str:
    """Drop enumerators ((一), (1)), markdown, spaces and punctuation, so quotes compare by their words."""
    text = re.sub(r"[(（][一二三四五六七八九十\d]+[)）]", "", text)
    return re.sub(r"[\s*\-→:：,，。;；、“”\"?？!！()（）]", "", text.replace("Step", ""))


def unquoted(text: str) -> list[str]:
    """Return the sentences of ``text`` that the SOP does not contain."""
    sop = normalise(SOP)
    return [f for f in re.split(r"[。;；\n]", text) if normalise(f) and normalise(f) not in sop]


def sop_stages() -> list[str]:
    """The stages the SOP lists in seed:2.1.1: 客户接触、需求分析、报价、合同签订、回款."""
    return re.search(r"收集当前销售各环节的执行情况,包括(.+?)等。", SOP).group(1).split("、")


def sop_stages_en() -> list[str]:
    """The English names of those stages, as CLAUSES.md gives them for seed:2.1.1."""
    row = re.search(r"^\| seed:2\.1\.1 \|[^|]*: (.+?) \|", (SHARED / "seed" / "CLAUSES.md").read_text(encoding="utf-8"),
                    flags=re.M)
    return [s.strip() for s in row.group(1).split(",")]


def test_stage_names_follow_the_sop_list(playbook):
    """seed:2.1.1: the stages that are not company additions are the SOP's five, in its order and wording."""
    assert sop_stages() == ["客户接触", "需求分析", "报价", "合同签订", "回款"]
    kinds = {p.item: p for p in playbook.provenance() if p.part == "stages"}
    listed = [s for s in playbook.stages if kinds[s.id].kind != "company-setting"]
    assert [s.name.zh_CN for s in listed] == sop_stages()
    assert [s.name.en.lower() for s in listed] == sop_stages_en()
    assert all(kinds[s.id].ref == "seed:2.1.1" for s in listed)


def test_the_added_demo_stage_is_a_marked_company_setting(playbook):
    """方案演示 is not in the SOP's list: it stays only as a company setting with its reason; ids are stable."""
    kinds = {p.item: p for p in playbook.provenance() if p.part == "stages"}
    added = [s for s in playbook.stages if s.name.zh_CN not in sop_stages()]
    assert [s.id for s in added] == ["solution_demo"]
    assert kinds["solution_demo"].kind == "company-setting" and "seed:2.1.1" in kinds["solution_demo"].rationale
    assert [s.id for s in playbook.stages] == ["first_contact", "needs_analysis", "solution_demo", "quotation",
                                                "contract_negotiation", "payment_collection"]


def texts(part: str, item) -> list[str]:
    """The zh-CN content an item of ``part`` would quote from the SOP if its source were the SOP."""
    fields = {"roles": ["duties"], "stages": ["name", "entry_criteria", "exit_criteria"], "steps": ["name", "action"],
              "tiers": ["name", "criteria"], "kpis": ["name", "formula"], "templates": ["body", "items"],
              "confidentiality": ["text"], "clauses": ["text"]}.get(part, [])
    out = []
    for f in fields:
        value = getattr(item, f)
        out += [v.zh_CN for v in (value if isinstance(value, list) else [value]) if v is not None]
    return out


def test_items_citing_the_sop_quote_it(playbook):
    """Every item whose provenance is ``seed:N`` (its own or its clause's) says only what the SOP says."""
    items = {(part, str(getattr(x, "id", None) or getattr(x, "role", None) or part)): x
             for part in ("clauses", "roles", "stages", "steps", "tiers", "kpis", "templates", "confidentiality")
             for x in getattr(playbook, part)}
    claims = [p for p in playbook.provenance() if p.kind == "seed" and (p.part, p.item) in items]
    assert len(claims) >= 25
    bad = {(p.part, p.item): unquoted(t) for p in claims for t in texts(p.part, items[(p.part, p.item)])
           if unquoted(t)}
    assert bad == {}


def test_invented_content_does_not_claim_the_sop(playbook):
    """The cases of issue 15: question list, welcome text, template bodies, confidentiality rules, win rate."""
    kinds = {(p.part, p.item): p for p in playbook.provenance()}
    for rule in playbook.confidentiality:
        assert kinds[("confidentiality", rule.id)].kind == "elaborates"
        assert kinds[("confidentiality", rule.id)].ref == "seed:3.1.3"
    for template in playbook.templates:
        assert kinds[("templates", template.id)].kind in ("elaborates", "company-setting"), template.id
    assert "您目前使用哪些解决方案" in kinds[("templates", "needs_discovery")].rationale
    assert kinds[("kpis", "win_rate")].kind == "company-setting"
    assert kinds[("roles", "sales_director")].kind == "company-setting"
    assert "none" not in {p.kind for p in kinds.values()}


def test_summary_counts_every_kind(playbook):
    """check's summary: N items from the SOP, M elaborations, K company settings (all items counted)."""
    counts = Counter(p.kind for p in playbook.provenance())
    line = provenance_summary(playbook)
    assert line.startswith(f"provenance: {counts['seed']} items from the SOP, {counts['elaborates']} elaborations, "
                           f"{counts['company-setting']} company settings")
    assert counts["elaborates"] >= 20 and counts["company-setting"] >= 20
    proc = subprocess.run([sys.executable, "-m", "sopcoach", "check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and line + "\n" in proc.stderr, proc.stdout + proc.stderr


def copy_playbook(tmp_path):
    folder = tmp_path / "playbook"
    shutil.copytree(ROOT / "playbook", folder)
    return folder


@pytest.mark.parametrize("file, reason, field, message", [
    ("kpis.yaml", "Not among the SOP's KPIs", "kpis[3]", "a company-setting needs a one-line 'rationale' saying why"),
    ("clauses.yaml", "The source only fixes class A", "clauses[", "company-setting clause needs a one-line 'rationale'"),
])
def test_company_setting_without_reason_is_refused(tmp_path, file, reason, field, message):
    """A company-setting item (win_rate) or clause without its rationale: file, line, field and the fix."""
    folder = copy_playbook(tmp_path)
    replace(folder / file, f"    rationale: {reason}", f"    # {reason}")
    with pytest.raises(ContentError) as err:
        load_playbook(folder)
    [problem] = err.value.problems
    assert problem.path.endswith(file) and problem.line > 0 and problem.field.startswith(field)
    assert message in problem.message


def test_unknown_seed_reference_is_refused(tmp_path):
    """``seed:3.4.1`` is no clause of the SOP: refused on a clause and on an item's ``elaborates``."""
    folder = copy_playbook(tmp_path)
    replace(folder / "clauses.yaml", "source: seed:4.2.2", "source: seed:4.2.7")
    replace(folder / "customers.yaml", "    elaborates: seed:3.1.3", "    elaborates: seed:3.4.1")
    with pytest.raises(ContentError) as err:
        load_playbook(folder)
    problems = {p.field: (p.path, p.line, p.message) for p in err.value.problems}
    clause = next(v for k, v in problems.items() if k.startswith("clauses["))
    assert clause[0].endswith("clauses.yaml") and clause[1] > 0
    assert "unknown seed reference 'seed:4.2.7'" in clause[2] and "seed:4.2.2" in clause[2]
    rule = next(v for k, v in problems.items() if k.startswith("confidentiality["))
    assert rule[0].endswith("customers.yaml") and "unknown seed reference 'seed:3.4.1'" in rule[2]


def test_elaboration_needs_its_how_and_one_kind(tmp_path):
    """``elaborates`` without a rationale, or beside ``source``, is refused with the fix."""
    folder = copy_playbook(tmp_path)
    text = (folder / "customers.yaml").read_text(encoding="utf-8")
    first = text.index("    elaborates: seed:3.1.3\n")
    end = text.index("\n", text.index("    rationale:", first))
    (folder / "customers.yaml").write_text(text[:first] + "    elaborates: seed:3.1.3" + text[end:], encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_playbook(folder)
    [problem] = err.value.problems
    assert problem.path.endswith("customers.yaml") and problem.field.startswith("confidentiality[0]")
    assert "needs a one-line 'rationale' saying how" in problem.message
    replace(folder / "kpis.yaml", "    source: company-setting\n", "    source: company-setting\n    elaborates: seed:1.3.2\n")
    with pytest.raises(ContentError) as err:
        load_playbook(folder)
    assert "give either 'source' or 'elaborates', not both" in str(err.value)


def test_check_reports_items_without_provenance(tmp_path):
    """A product that names no clause and states no source is reported (a warning) with its location."""
    folder = copy_playbook(tmp_path)
    replace(folder / "products.yaml", "    clause: product-catalogue\n", "")
    problems = check_paths([folder], ROOT)
    found = [p for p in problems if "provenance" in p.message]
    assert len(found) == 1 and found[0].severity == "warning"
    assert found[0].path.endswith("products.yaml") and found[0].line > 0 and found[0].field == "products[0]"
    assert "source: company-setting" in found[0].message


def test_a_crm_using_the_sop_stage_name_maps_to_the_stable_id():
    """The built-in simulated mapping reads both its own label (合同谈判) and the SOP's name (合同签订)."""
    from sopcoach.crm.mapping import load_mapping
    stages = load_mapping("simulated").spec.stages
    assert stages["合同签订"] == stages["合同谈判"] == "contract_negotiation"


def test_known_seed_references_are_the_clause_index():
    """The package's list of SOP clauses (SEED_CLAUSES) is exactly CLAUSES.md's."""
    from sopcoach.content.playbook import SEED_CLAUSES
    index = re.findall(r"^\| (seed:[\d.]+) \|", (SHARED / "seed" / "CLAUSES.md").read_text(encoding="utf-8"), flags=re.M)
    assert list(SEED_CLAUSES) == index
