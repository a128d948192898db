"""Headless tests of the home page and the lesson pages: sign-in, tools, practice feedback, links."""
from __future__ import annotations

import re

import pytest

from sopcoach.lessons.progress import LessonService
from sopcoach.ui.home_app import HomeApp
from sopcoach.ui.lesson_app import LessonApp
from support import correct_response, wrong_response

#: Every test that uses the records database runs on SQLite and on PostgreSQL (tests/conftest.py).
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def code(inst):
    return inst.records.enroll("e8001", "冯三")


def _html(widget) -> str:
    """Concatenate the HTML/labels of a widget tree (what the page shows)."""
    out = []
    stack = [widget]
    while stack:
        x = stack.pop(0)
        if hasattr(x, "value") and isinstance(x.value, str):
            out.append(x.value)
        if hasattr(x, "description") and isinstance(x.description, str):
            out.append(x.description)
        stack.extend(getattr(x, "children", ()) or ())
    return "\n".join(out)


def test_home_lists_lessons_and_links_views_in_place(inst, clock, code):
    """The home view lists 10 lessons and the exam; its links are in-app view addresses, never a token."""
    app = HomeApp(inst, lang="zh-CN", clock=clock, learner_id="e8001")
    html = _html(app.root)
    assert len(app.bars) == 10 and "上岗认证考试" in html
    assert 'data-view href="/learn/exam"' in html and 'data-view href="/learn/lessons/process"' in html
    assert "session=" not in html and "ipynb" not in html


def test_home_without_a_learner_asks_to_sign_in(inst, clock, code):
    """Without a signed-in learner the home view lists nothing and asks to sign in."""
    app = HomeApp(inst, lang="en", clock=clock)
    assert app.learner_id is None and app.bars == {} and "sign in" in _html(app.root).lower()


def test_lesson_page_opens_and_practice_gives_feedback(inst, clock, code):
    """Opening a lesson records it; a checked answer shows right/wrong, the key and the clause at once."""
    app = LessonApp(inst, "authority", lang="zh-CN", clock=clock, learner_id="e8001")
    assert "authority" in inst.records.lesson_progress("e8001")
    item = next(iter(app.items.values()))
    q = item.q
    resp = wrong_response(q)
    _set(item, resp)
    item.check.click()
    assert "回答错误" in item.feedback.value and "正确答案" in item.feedback.value and "依据条款" in item.feedback.value
    _set(item, correct_response(q))
    item.check.click()
    assert "回答正确" in item.feedback.value
    assert f"已答 1/{len(app.items)}" in app.progress_line.value


def _set(item, resp) -> None:
    q = item.q
    if q.type == "single_choice":
        item.control.value = resp
    elif q.type == "true_false":
        item.control.value = "true" if resp else "false"
    elif q.type == "multiple_choice":
        for oid, box in item.boxes:
            box.value = oid in resp
    else:
        item.text.value = resp


def test_completing_the_practice_completes_the_lesson_in_the_page(inst, clock, code):
    """Answering every question right marks the lesson complete; a new page shows it and the answers."""
    app = LessonApp(inst, "service_levels", lang="en", clock=clock, learner_id="e8001")
    for item in app.items.values():
        _set(item, correct_response(item.q))
        item.check.click()
    assert "Lesson complete" in app.progress_line.value
    again = LessonApp(inst, "service_levels", lang="en", clock=clock, learner_id="e8001")
    assert "Lesson complete" in again.progress_line.value
    assert all("Correct" in it.feedback.value for it in again.items.values())


def test_empty_answer_is_refused_without_saving(inst, clock, code):
    """Checking without an answer shows a message and saves nothing."""
    app = LessonApp(inst, "customers", lang="en", clock=clock, learner_id="e8001")
    next(iter(app.items.values())).check.click()
    assert "has no answer yet; answer it, then check" in app.status.value
    assert not (inst.records.lesson_progress("e8001")["customers"].practice or {}).get("answers")


def test_catalogue_tool_prices_a_line_and_names_the_approver(inst, clock, code):
    """Lesson 10 lists every product with its list price; 41 Enterprise users at 0% need no approval
    (98,400 CNY), 42 do (100,800 CNY: the supervisor); a fractional quantity is refused."""
    tool = LessonApp(inst, "products", lang="en", clock=clock, learner_id="e8001").tool
    assert all(p.name.en in tool.table.value for p in inst.playbook.products) and "2,400 CNY" in tool.table.value
    zh = LessonApp(inst, "products", lang="zh-CN", clock=clock, learner_id="e8001").tool
    assert "2,400 元" in zh.table.value and "CNY" not in zh.table.value  # the Chinese page names the currency in words
    tool.product.value = "crm-enterprise"
    tool.quantity.box.value = 41
    assert "data-net='98400'" in tool.out.value and "data-approver=''" in tool.out.value
    tool.quantity.box.value = 42
    assert "data-net='100800'" in tool.out.value and "data-approver='sales_supervisor'" in tool.out.value
    tool.discount.value = "12"
    assert "after 12% off, the quote amount is 88,704 CNY" in tool.out.value
    tool.discount.value = "abc"
    assert "Type a number for the discount (got abc)" in tool.msg.value and tool.out.value == ""


def test_approval_tool_shows_the_approver_and_the_clause(inst, clock, code):
    """The simulator names the supervisor for 100,000.01 and nobody at exactly 100,000 / 10%."""
    app = LessonApp(inst, "authority", lang="zh-CN", clock=clock, learner_id="e8001")
    tool = app.tool
    tool.discount.value = "10"
    tool.amount.value = "100000"
    assert "data-approver=''" in tool.out.value and "各岗位报价权限与审批层级" in tool.out.value
    tool.amount.value = "100000.01"
    assert "data-approver='sales_supervisor'" in tool.out.value
    tool.amount.value = "abc"
    assert "请输入数字" in tool.msg.value


def test_sla_tool_computes_the_national_day_deadline(inst, clock, code):
    """The calculator shows 2025-10-09 10:00 for 3 working days from the make-up Sunday, and 16:00 for 8 h."""
    tool = LessonApp(inst, "service_levels", lang="zh-CN", clock=clock, learner_id="e8001").tool
    assert "2025-10-09 10:00" in tool.out.value
    tool.sla.value = "first_contact"
    tool.start_date.value, tool.start_time.value = "2025-09-30", "17:00"
    assert "2025-10-09 16:00" in tool.out.value
    tool.sla.value = tool.CUSTOM
    tool.unit.value, tool.value.value = "working_days", 5
    tool.start_date.value, tool.start_time.value = "2025-09-28", "10:00"
    assert "2025-10-11 10:00" in tool.out.value


def test_sla_tool_shows_the_satisfaction_call_day_and_the_company_window(inst, clock, code):
    """The satisfaction call is due on day 30 (not by it): the tool names the day and the tolerance window."""
    tool = LessonApp(inst, "service_levels", lang="en", clock=clock, learner_id="e8001").tool
    tool.sla.value = "satisfaction_call"
    tool.start_date.value, tool.start_time.value = "2025-03-03", "10:00"
    assert "Due on" in tool.out.value and "2025-04-02 10:00" in tool.out.value
    assert "<b>2025-03-28</b> – <b>2025-04-08</b>" in tool.out.value and "Earlier is too early" in tool.out.value


def test_tiers_and_plan_tools_warn_below_the_minimum(inst, clock, code):
    """A 600-employee key account is class A; a plan of 2 follow-ups is flagged below A's 3."""
    tool = LessonApp(inst, "customers", lang="en", clock=clock, learner_id="e8001").tool
    assert "data-tier='A'" in tool.result.value and tool.plan_tier.value == "A"
    assert "Warning" in tool.plan_out.value
    tool.days[2].value = 1
    assert "meets the minimum" in tool.plan_out.value
    tool.key.value = False
    assert "data-tier='B'" in tool.result.value


def test_funnel_tool_changes_with_the_numbers(inst, clock, code):
    """Editing the funnel numbers changes the rates and the weak stage shown."""
    tool = LessonApp(inst, "crm_kpis", lang="en", clock=clock, learner_id="e8001").tool
    assert "30.0%" in tool.funnel_out.value and "weak stage" in tool.funnel_out.value
    tool.counts["quotes_accepted"].value = 30
    tool.counts["contracts_signed"].value = 25
    tool.counts["needs_confirmed"].value = 40
    assert "20.0%" in tool.funnel_out.value  # lead conversion 40/200


@pytest.mark.parametrize(("lesson", "lang", "box", "result", "refusal"), [
    ("customers", "zh-CN", lambda t: t.employees, lambda t: t.result, "请输入整数（收到 2.5），未据此计算。"),
    ("customers", "en", lambda t: t.days[2], lambda t: t.plan_out, "Type a whole number (got 2.5); nothing was computed"),
    ("crm_kpis", "en", lambda t: t.counts["needs_confirmed"], lambda t: t.funnel_out, "Type a whole number (got 2.5)"),
    ("crm_kpis", "zh-CN", lambda t: t.lost, lambda t: t.funnel_out, "请输入整数（收到 2.5）"),
])
def test_number_boxes_refuse_a_decimal_next_to_the_box(inst, clock, code, lesson, lang, box, result, refusal):
    """2.5 in a whole-number box is kept as typed, refused next to the box, and computes nothing; a whole one is taken again."""
    tool = LessonApp(inst, lesson, lang=lang, clock=clock, learner_id="e8001").tool
    b = box(tool)
    before, shown = b.value, result(tool).value
    assert shown and b.note.value == ""
    b.value = 2.5
    assert b.value == 2.5 and refusal in b.note.value and result(tool).value == ""
    b.value = before
    assert b.note.value == "" and result(tool).value == shown


def test_number_boxes_refuse_out_of_range_and_the_sla_amount_computes_nothing(inst, clock, code):
    """A negative day count is refused with the range; a custom limit of 2.5 days shows no due time."""
    tiers = LessonApp(inst, "customers", lang="en", clock=clock, learner_id="e8001").tool
    tiers.days[0].value = -1
    assert "Type a whole number from 0 to 20 (got -1)" in tiers.days[0].note.value and tiers.plan_out.value == ""
    tool = LessonApp(inst, "service_levels", lang="zh-CN", clock=clock, learner_id="e8001").tool
    tool.sla.value = tool.CUSTOM
    tool.value.value = 2.5
    assert "sopcoach-due" not in tool.out.value and "请输入整数（收到 2.5）" in tool.value.note.value
    tool.value.value = 2
    assert "sopcoach-due" in tool.out.value and tool.value.note.value == ""


def test_confidentiality_and_other_tools_render(inst, clock, code):
    """Every lesson builds its tool without a message; the confidentiality judge answers at once."""
    for lesson in LessonService(inst).lessons():
        app = LessonApp(inst, lesson.id, lang="en", clock=clock, learner_id="e8001")
        assert app.tool is not None and app.tool.msg.value == "" and app.status.value == "", lesson.id
    conf = LessonApp(inst, "confidentiality", lang="en", clock=clock, learner_id="e8001").tool
    conf.on_judge("personal-channels", True)
    assert "Not right" in conf.feedback["personal-channels"].value


def test_lesson_navigation_links(inst, clock, code):
    """A lesson links home, to its neighbours, and the last lesson links to the exam."""
    first = LessonApp(inst, "purpose", lang="zh-CN", clock=clock, learner_id="e8001")
    assert 'href="/learn/"' in first.nav.value and 'href="/learn/lessons/process"' in first.nav.value
    last = LessonApp(inst, "products", lang="en", clock=clock, learner_id="e8001")
    assert 'href="/learn/exam?lang=en"' in last.nav.value and 'href="/learn/lessons/improvement?lang=en"' in last.nav.value


def test_no_handler_without_names_value():
    """Every observe() in the lesson UI is registered with names="value"."""
    from pathlib import Path
    import sopcoach.ui as ui
    for name in ("home_app.py", "lesson_app.py", "lesson_tools.py"):
        text = (Path(ui.__file__).parent / name).read_text(encoding="utf-8")
        for call in re.findall(r"\.observe\(([^)]*)\)", text):
            assert 'names="value"' in call, (name, call)


@pytest.fixture
def bound_page(monkeypatch, tmp_path):
    """Return ``bind(learner_id) -> (records, token)``: a learner page whose kernel is bound to a session."""
    import sopcoach.ui.app as la
    from sopcoach.config import installation
    from sopcoach.records.store import token_hash
    from support import ROOT
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path))
    monkeypatch.setenv("SOPCOACH_CONTENT", str(ROOT))
    monkeypatch.delenv("SOPCOACH_DB_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    kernel_id = "1b2c3d4e-0000-4000-8000-000000000001"
    monkeypatch.setattr(la, "page_kernel_id", lambda: kernel_id)

    def bind(learner_id: str):
        records = installation().records
        records.enroll(learner_id, "学员")
        token = records.open_session(learner_id, 3600)
        records.bind_page(kernel_id, learner_id, token_hash(token))
        return records, token
    return bind


def test_learner_app_builds_every_view_for_the_bound_learner(bound_page, monkeypatch):
    """The learner page shows home, every lesson, the exam and recertification for the learner its kernel is bound to."""
    import sopcoach.ui.app as la
    from sopcoach.content.playbook import load_playbook
    from support import ROOT
    bound_page("e8002")
    app = la.build_learner_app()
    sent = []
    monkeypatch.setattr(app.router, "send", lambda content, buffers=None: sent.append(content))
    routes = ["", "exam", "recertification"] + [f"lessons/{x.id}" for x in load_playbook(ROOT / "playbook").lessons]
    for route in routes:
        app.on_navigate(route, "en")
        assert app.learner_id == "e8002" and app.path == route
        assert sent[-1]["type"] == "address" and sent[-1]["path"] == route
        assert "sign in" not in _html(app.main).lower(), route
    app.on_navigate("no/such/view", "en")
    assert app.path == "" and sent[-1]["path"] == ""


def test_learner_app_without_a_live_session_asks_to_sign_in_again(bound_page):
    """A kernel bound to an ended session shows no view, only a link to sign in again."""
    import sopcoach.ui.app as la
    records, _ = bound_page("e8003")
    records.end_sessions("e8003")
    app = la.build_learner_app()
    app.on_navigate("exam", "en")
    assert app.view is None and "sign in again" in _html(app.main)


def test_view_switches_leave_no_widgets_behind(bound_page, monkeypatch):
    """Moving between views closes every widget of the old view: the kernel's live widgets do not grow."""
    import sopcoach.ui.app as la
    bound_page("e8004")
    app = la.build_learner_app()
    monkeypatch.setattr(app.router, "send", lambda content, buffers=None: None)
    cycle = ["", "lessons/purpose", "lessons/process", "exam", "recertification", ""]
    counts = []
    for _ in range(3):
        for route in cycle:
            app.on_navigate(route, "zh-CN")
        counts.append(len(la.widget_registry()))
    assert counts[0] == counts[1] == counts[2]


def test_views_share_the_page_layout(bound_page, monkeypatch):
    """No widget of any view brings a default layout of its own: it uses the page's one.

    Every widget model is a message to the page and a view for the browser to draw; views that made
    a fresh default Layout per widget sent about twice the messages per view switch.
    """
    import sopcoach.ui.app as la
    from ipywidgets import Layout
    from sopcoach.content.playbook import load_playbook
    from support import ROOT
    bound_page("e8005")
    app = la.build_learner_app()
    monkeypatch.setattr(app.router, "send", lambda content, buffers=None: None)
    default_layout = Layout().get_state()
    routes = ["", "exam", "recertification"] + [f"lessons/{x.id}" for x in load_playbook(ROOT / "playbook").lessons]
    for route in routes:
        before = set(la.widget_registry())
        app.on_navigate(route, "zh-CN")
        made = [la.widget_registry()[k] for k in la.widget_registry() if k not in before]
        owners = [type(x).__name__ for x in made
                  if not isinstance(x, Layout) and isinstance(getattr(x, "layout", None), Layout)
                  and x.layout.model_id not in before and x.layout.get_state() == default_layout]
        assert owners == [], route


def test_views_send_css_classes_with_their_widgets(bound_page, monkeypatch):
    """Opening a view sends no separate CSS-class update: each widget's classes come with the widget.

    A class added after the widget exists is one more message per widget; the lesson views sent ~30
    of them per view switch.
    """
    import sopcoach.ui.app as la
    from ipywidgets import Widget
    from sopcoach.content.playbook import load_playbook
    from support import ROOT
    bound_page("e8006")
    app = la.build_learner_app()
    monkeypatch.setattr(app.router, "send", lambda content, buffers=None: None)
    updates: list[tuple[str, str]] = []
    real_send = Widget.send_state

    def send_state(self, key=None):
        keys = [key] if isinstance(key, str) else list(key or [])
        updates.extend((type(self).__name__, k) for k in keys if k == "_dom_classes")
        return real_send(self, key)

    monkeypatch.setattr(Widget, "send_state", send_state)
    routes = ["", "exam", "recertification"] + [f"lessons/{x.id}" for x in load_playbook(ROOT / "playbook").lessons]
    for route in routes:
        app.on_navigate(route, "zh-CN")
        assert updates == [], route


def test_funnel_tool_table_marks_the_weak_stage_row(inst, clock, code):
    """The funnel table's weak row carries sopcoach-weak and the warning; each rate cell is named by its KPI."""
    tool = LessonApp(inst, "crm_kpis", lang="en", clock=clock, learner_id="e8001").tool
    html = tool.funnel_out.value
    weak_rows = re.findall(r"<tr class='sopcoach-weak'>(.*?)</tr>", html)
    assert len(weak_rows) == 1 and "weak stage" in weak_rows[0]
    assert html.count("weak stage") == 1
    rates = dict(re.findall(r"<td class='sopcoach-rate-([\w-]+)'>([\d.]+%|—)</td>", html))
    assert len(rates) == len(tool.counts) - 1 and "30.0%" in rates.values()


@pytest.mark.databases("sqlite")
def test_tools_tell_sop_from_company_content(inst, clock, code):
    """The added demo stage, the templates and the confidentiality rules show where they come from, not just a seed clause."""
    process = LessonApp(inst, "process", lang="zh-CN", clock=clock, learner_id="e8001").tool
    demo = re.search(r"<span class='sopcoach-stage[^']*' data-stage='solution_demo'>.*?</span><br>", process.diagram.value)
    assert demo and "sopcoach-tag-company" in demo.group(0) and "公司设定" in demo.group(0)
    contract = re.search(r"data-stage='contract_negotiation'>(.*?)<", process.diagram.value)
    assert contract.group(1) == "5. 合同签订" and process.diagram.value.count("sopcoach-tag-company") == 1
    tools = LessonApp(inst, "tools", lang="en", clock=clock, learner_id="e8001").tool
    assert "company wording of SOP section 1.1.1" in tools.out.value and "seed:" not in tools.out.value
    conf = LessonApp(inst, "confidentiality", lang="en", clock=clock, learner_id="e8001").tool
    conf.on_judge("personal-channels", False)
    assert "company wording of SOP section 3.1.3" in conf.feedback["personal-channels"].value


@pytest.mark.databases("sqlite")
def test_a_number_practice_question_refuses_text_in_the_page_language(inst, clock, code):
    """``abc`` in a numeric practice question is refused in the page's language (saying a number is
    wanted, not "answer first") and saves nothing; an empty check says to answer first."""
    for lang, empty, wrong in (("zh-CN", "还没有作答", "请输入数字，例如 12.5（收到“abc”）"),
                               ("en", "has no answer yet", 'takes a number, e.g. 12.5 (got abc)')):
        app = LessonApp(inst, "crm_kpis", lang=lang, clock=clock, learner_id="e8001")
        item = next(it for it in app.items.values() if it.q.type == "numeric")
        item.check.click()
        assert empty in app.status.value
        item.text.value = "abc"
        item.check.click()
        assert wrong in app.status.value
        stored = (inst.records.lesson_progress("e8001")["crm_kpis"].practice or {}).get("answers") or {}
        assert item.q.id not in stored
    # a number is checked (right or wrong), then text: the refusal replaces that verdict under the question
    item.text.value = "1"
    item.check.click()
    assert "sopcoach-refused" not in item.feedback.value and item.feedback.value
    item.text.value = "abc"
    item.check.click()
    assert "sopcoach-refused" in item.feedback.value and wrong in item.feedback.value


@pytest.mark.databases("sqlite")
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_tools_refuse_bad_numbers_in_the_page_language(inst, clock, code, lang):
    """Text, a negative amount or a discount above 100% in a tool's box gives a message in the page's
    language (no library text in English, no result computed)."""
    zh = lang == "zh-CN"
    cjk = re.compile(r"[\u4e00-\u9fff]")
    approval = LessonApp(inst, "authority", lang=lang, clock=clock, learner_id="e8001").tool
    for box, value, words in ((approval.amount, "abc", ("金额请输入数字", "Type a number for the amount")),
                              (approval.amount, "-5", ("金额应为不小于 0 的数", "the amount must be a number of 0 or more")),
                              (approval.discount, "150", ("折扣应为0 到 100 之间的数", "the discount must be a number from 0 to 100"))):
        box.value = value
        expected = words[0] if zh else words[1]
        assert expected.replace(" ", "") in approval.msg.value.replace(" ", ""), approval.msg.value
        assert approval.out.value == ""
        assert bool(cjk.search(approval.msg.value)) == zh
        box.value = "120000" if box is approval.amount else "8"
        assert approval.msg.value == "" and "sopcoach-approver" in approval.out.value
    trend = LessonApp(inst, "improvement", lang=lang, clock=clock, learner_id="e8001").tool
    trend.series.value = "30, abc, 25"
    assert ("用逗号分隔的月度数字" if zh else "separated by commas") in trend.msg.value and trend.out.value == ""
    tiers = LessonApp(inst, "customers", lang=lang, clock=clock, learner_id="e8001").tool
    tiers.revenue.value = "-1"
    assert ("年收入应为不小于 0 的数" if zh else "the revenue must be a number of 0 or more").replace(" ", "") in \
        tiers.msg.value.replace(" ", "")
    catalogue = LessonApp(inst, "products", lang=lang, clock=clock, learner_id="e8001").tool
    catalogue.discount.value = "x"
    assert ("折扣请输入数字" if zh else "Type a number for the discount") in catalogue.msg.value
    assert catalogue.out.value == ""


@pytest.mark.databases("sqlite")
def test_a_lesson_open_in_two_windows_tells_the_stale_one(inst, clock, code):
    """Window B checks a practice answer; window A's next check is saved too, and A is told, in its
    language, that another window changed the practice, and shows B's answer and the progress."""
    a = LessonApp(inst, "customers", lang="zh-CN", clock=clock, learner_id="e8001")
    b = LessonApp(inst, "customers", lang="zh-CN", clock=clock, learner_id="e8001")
    first, second = list(b.items)[:2]
    _set(b.items[first], correct_response(b.items[first].q))
    b.items[first].check.click()
    assert b.status.value == ""
    _set(a.items[second], correct_response(a.items[second].q))
    a.items[second].check.click()
    assert "另一个窗口" in a.status.value
    answers = inst.records.lesson_progress("e8001")["customers"].practice["answers"]
    assert first in answers and second in answers
    assert "sopcoach-right" in a.items[first].feedback.value, "A now shows B's checked answer"
    assert "已答 2/" in a.progress_line.value
    _set(a.items[first], correct_response(a.items[first].q))
    a.items[first].check.click()
    assert a.status.value == "", "A is up to date again: no warning"
