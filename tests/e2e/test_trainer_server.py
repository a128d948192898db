"""The trainer server (``sopcoach serve --trainer``): token required over HTTP, trainer notebooks only,
and the trainer apps in Chromium (release and review, results download, certificate PDF).

The server is the real command line, started with a content folder laid out in the test's tmp dir
(copies of ``playbook/`` and ``quizzes/``, links to the project's notebook folders) and stopped by
its pid (SIGTERM, which it forwards to Voila).
"""
from __future__ import annotations

import io
import re
import shutil
import time
from pathlib import Path

import pytest
import requests

from sopcoach.certification.exam import attempt_question
from sopcoach.content.playbook import load_playbook
from sopcoach.content.quizbank import load_bank
from sopcoach.i18n import shown
from support import poll, raise_supervisor_limit
from trainer_servers import Trainer, serve_trainer

ROOT = Path(__file__).resolve().parents[2]
MAVEN = ROOT.parent / "shared" / "data" / "crm" / "maven_crm_sales_opportunities"
PUBLIC_URL = "https://sop.example.com"  # the learner server's address printed on certificates
KERNEL_ID = re.compile(r"kernelId[^0-9a-f]+([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def _content(tmp: Path) -> Path:
    content = tmp / "content"
    content.mkdir()
    for part in ("playbook", "quizzes"):
        shutil.copytree(ROOT / part, content / part)
    (content / "notebooks").mkdir()
    for d in ("learner", "trainer", "review"):
        (content / "notebooks" / d).symlink_to(ROOT / "notebooks" / d, target_is_directory=True)
    return content


def _populate(content: Path, home: Path) -> None:
    """Release 1.0, simulate a dozen learners, then raise a limit its clause still quotes (not released yet)."""
    from sopcoach.authoring.versions import release
    from sopcoach.certification.exam import ExamService
    from sopcoach.certification.itemstats import simulate_attempts
    from sopcoach.content.playbook import load_playbook
    from sopcoach.content.quizbank import load_bank, load_blueprint
    from sopcoach.records.store import Records
    pb = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", pb)
    bp = load_blueprint(content / "quizzes" / "blueprint.yaml", bank)
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    release(records, pb, bank, content / "playbook", by="王老师")
    simulate_attempts(ExamService(records, bank, bp, pb.content_hash(), pb.sop.version), learners=12, seed=3)
    records.dispose()
    raise_supervisor_limit(content / "playbook", texts=False)  # quote-limits still says 500,000


@pytest.fixture
def trainer(tmp_path: Path):
    content = _content(tmp_path)
    home = tmp_path / "var"
    home.mkdir()
    _populate(content, home)
    (home / "crm").mkdir()  # the exports the monthly review offers (SOPCOACH_HOME/crm)
    (home / "crm" / MAVEN.name).symlink_to(MAVEN, target_is_directory=True)
    with serve_trainer(content, home, tmp_path, SOPCOACH_PUBLIC_URL=PUBLIC_URL) as trainer:
        yield trainer


PROTECTED = ["/", "/voila/tree", "/voila/tree/trainer", "/voila/render/trainer/results.ipynb",
             "/voila/render/review/monthly_review.ipynb", "/voila/api/contents/", "/voila/api/contents/trainer"]


def test_trainer_server_refuses_requests_without_its_token(trainer: Trainer) -> None:
    """Without the token (or with a wrong one) every page and API is refused; with it they answer."""
    printed = trainer.log.read_text(errors="replace")
    assert f"?token={trainer.token}" in printed and ":" in printed  # the URL to open is printed
    assert "Warning" not in printed, printed  # no traitlets notice on Voila's own command line
    for path in PROTECTED:
        for kwargs in ({}, {"params": {"token": "wrong-token-0000000000"}},
                       {"headers": {"Authorization": "token wrong-token-0000000000"}}):
            r = requests.get(trainer.base + path, allow_redirects=False, timeout=30, **kwargs)
            assert r.status_code in (302, 403), (path, kwargs, r.status_code)
            if r.status_code == 302:
                assert r.headers["Location"].startswith("/login"), path
            assert "results()" not in r.text and "from sopcoach" not in r.text
    listing = requests.get(trainer.base + "/voila/api/contents/", headers={"Authorization": f"token {trainer.token}"},
                           timeout=30)
    assert listing.status_code == 200
    assert {item["name"] for item in listing.json()["content"]} == {"trainer", "review"}
    page = requests.get(trainer.url("/voila/render/trainer/results.ipynb"), timeout=180)
    assert page.status_code == 200 and "application/vnd.jupyter.widget-view+json" in page.text
    kernel = KERNEL_ID.search(page.text).group(1)
    assert requests.get(f"{trainer.base}/api/kernels/{kernel}", timeout=30).status_code == 403
    assert requests.get(f"{trainer.base}/api/kernels/{kernel}", timeout=30,
                        headers={"Authorization": f"token {trainer.token}"}).status_code == 200
    # The learner notebooks are not below the trainer server's root, and files are not served.
    assert requests.get(trainer.url("/voila/render/learner/exam.ipynb"), timeout=60).status_code == 404
    assert requests.get(trainer.url("/voila/files/trainer/results.ipynb"), timeout=30).status_code == 403


def test_learner_server_log_opens_without_warnings(learner_server) -> None:
    """The learner server's log starts with its own lines: no traitlets notice about its command line."""
    served = learner_server(pool_size=1)
    assert "Warning" not in served.log(), served.log()


def test_learner_server_never_serves_trainer_notebooks(learner_server, tmp_path) -> None:
    """The learner server (root notebooks/learner) lists and renders no trainer or review notebook,
    to an anonymous visitor or a signed-in learner."""
    from sopcoach.records.store import Records
    from support import learner_env, sign_in_session
    home = tmp_path / "home"
    home.mkdir()
    records = Records(f"sqlite:///{home / 'sopcoach.db'}")
    code = records.enroll("e6001", "周九")
    records.dispose()
    base = learner_server(ROOT / "notebooks" / "learner", learner_env(ROOT, home), pool_size=0).base
    signed_in = sign_in_session(base, "e6001", code)
    for client in (requests.Session(), signed_in):
        for path in ("voila/api/contents/", "voila/tree", "voila/render/trainer/results.ipynb",
                     "voila/render/../trainer/results.ipynb", "voila/render/%2E%2E%2Ftrainer%2Fresults.ipynb",
                     "voila/tree/trainer", "trainer/results.ipynb", "voila/render/app.ipynb"):
            r = client.get(base + path, timeout=60, allow_redirects=False)
            assert r.status_code in (403, 404), (path, r.status_code)
            assert "trainer_app" not in r.text and "results.ipynb" not in r.text


def test_trainer_apps_in_chromium(trainer: Trainer, page, artifacts) -> None:
    """Release the edited playbook (refused, then with the quotes confirmed), confirm two questions, download
    results (XLSX) and a certificate (PDF)."""
    import openpyxl
    from playwright.sync_api import expect
    from pypdf import PdfReader

    page.set_viewport_size({"width": 1280, "height": 2400})
    page.goto(trainer.url("/voila/render/trainer/playbook_changes.ipynb"), timeout=180_000)
    expect(page.get_by_text("authority[sales_supervisor].max_quote_amount", exact=True)).to_be_visible(timeout=180_000)
    expect(page.get_by_text("没有问题。")).to_be_visible()
    page.screenshot(path=str(artifacts / "playbook_changes.png"), full_page=True)
    expect(page.locator(".sopcoach-stale-quotes li")).to_have_count(2)
    expect(page.get_by_text(re.compile("仍写着 500,000元"))).to_be_visible()
    page.get_by_placeholder("培训师").fill("王老师")
    expect(page.get_by_label("版本号")).to_have_value("1.1")
    page.locator("textarea").fill("月度复盘：主管报价上限提高到 80 万")
    page.get_by_role("button", name="发布此版本").click()  # refused: the clause still says 500,000
    expect(page.locator(".sopcoach-msg-warning")).to_contain_text("未发布:2 处文字仍写着已修改的旧值", timeout=60_000)
    page.locator(".sopcoach-confirm-quotes input[type=checkbox]").check()
    page.get_by_role("button", name="发布此版本").click()
    expect(page.get_by_text("已发布 1.1：修改 1 个条款，11 题待复核；王老师 确认保留 2 处旧值引用（已随版本记录）。")
           ).to_be_visible(timeout=60_000)
    review = page.locator("[class*=sopcoach-review-] input[type=checkbox]")
    expect(review).to_have_count(11)
    page.locator(".sopcoach-review-sp-rep-approver input[type=checkbox]").check()
    page.locator(".sopcoach-review-sp-am-approver input[type=checkbox]").check()
    page.get_by_role("button", name="确认所选题目").click()
    expect(page.get_by_text("已确认 2 题，重新进入考试：sp-rep-approver, sp-am-approver")).to_be_visible(timeout=60_000)
    expect(review).to_have_count(9)
    page.screenshot(path=str(artifacts / "playbook_released.png"), full_page=True)
    assert 'version: "1.1"' in (trainer.content / "playbook" / "sop.yaml").read_text(encoding="utf-8")

    page.goto(trainer.url("/voila/render/trainer/results.ipynb"), timeout=180_000)
    expect(page.get_by_role("link", name="下载 Excel (XLSX)")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("演示学员001")).to_be_visible()
    page.screenshot(path=str(artifacts / "results.png"), full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("link", name="下载 Excel (XLSX)").click()
    assert dl.value.suggested_filename.endswith(".xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(Path(dl.value.path()).read_bytes())).active.values)
    assert rows[0][:2] == ("员工编号", "姓名") and len(rows) == 13 and rows[1][1] == "演示学员001"

    page.goto(trainer.url("/voila/render/trainer/certificates.ipynb"), timeout=180_000)
    expect(page.get_by_role("button", name="生成 PDF")).to_be_visible(timeout=180_000)
    page.get_by_role("button", name="生成 PDF").click()
    link = page.get_by_role("link", name=re.compile(r"下载 SC-.*\.pdf"))
    expect(link).to_be_visible(timeout=60_000)
    with page.expect_download() as dl:
        link.click()
    assert dl.value.suggested_filename.startswith("certificate-SC-")
    text = PdfReader(io.BytesIO(Path(dl.value.path()).read_bytes())).pages[0].extract_text()
    assert "上岗认证证书" in text and "演示学员" in text and "SOP version: 1.0" in text
    code = re.search(r"SC-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", text).group(0)
    assert f"验证 Verify: {PUBLIC_URL}/verify?code={code}" in text  # the check page, not the shell command
    expect(page.locator(".sopcoach-covered summary")).to_contain_text("此证书涵盖的")
    page.get_by_placeholder("SC-XXXX-XXXX-XXXX").fill(code)
    page.get_by_role("button", name="验证").click()
    expect(page.get_by_text(re.compile(f"{code}：真实证书"))).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts / "certificates.png"), full_page=True)

    page.goto(trainer.url("/voila/render/trainer/item_analysis.ipynb"), timeout=180_000)
    expect(page.get_by_text("Cronbach α")).to_be_visible(timeout=180_000)
    expect(page.get_by_text("Livingston K²")).to_be_visible()
    # Questions read by their text (the id small beneath); the chart places them, each point's tooltip its text.
    stems = {q.text.get("zh-CN") for q in load_bank(trainer.content / "quizzes" / "bank",
                                                     load_playbook(trainer.content / "playbook")).questions.values()}
    first = page.locator(".sopcoach-question").first
    expect(first).to_be_visible()
    assert any(first.get_attribute("title").startswith(stem) for stem in stems)
    expect(page.locator(".sopcoach-sample-note").first).to_contain_text("样本不足 (n=")
    chart = page.locator("figure.sopcoach-item-chart svg")
    expect(chart).to_be_visible()
    points = chart.locator(".sopcoach-item-point")
    assert points.count() > 0
    tip = points.first.locator("title").text_content()
    assert any(tip.startswith(stem) for stem in stems) and "难度指数" in tip and "区分度" in tip
    expect(page.get_by_role("link", name="下载 Excel (XLSX)")).to_be_visible()
    page.screenshot(path=str(artifacts / "item_analysis.png"), full_page=True)


def test_trainer_home_leads_to_each_page_in_either_language(trainer: Trainer, contexts, artifacts) -> None:
    """/ is the trainer home (not a file list): every page under what a trainer does with it; its English
    version links to the English pages, which read English, ask nothing from outside the server (Font
    Awesome comes from the server) and lead back home."""
    from playwright.sync_api import expect
    page = contexts.new().new_page()

    page.goto(trainer.url("/"), timeout=60_000)
    expect(page.get_by_role("heading", name="培训师主页")).to_be_visible()
    cards = page.locator("a.card")
    expect(cards).to_have_count(7)
    for title in ("考试成绩", "证书", "试题分析", "试题编辑器", "规程编辑器", "规程修改、发布与复核", "月度销售复盘"):
        expect(page.locator("a.card b", has_text=title).first).to_be_visible()
    assert "仅供培训师服务器使用" not in page.content()
    page.screenshot(path=str(artifacts / "trainer_home.png"), full_page=True)
    page.locator("#sopcoach-lang").click()
    expect(page.get_by_role("heading", name="Trainer home")).to_be_visible()
    page.locator("a.card", has_text="Exam results").click()
    expect(page.get_by_text("Download Excel (XLSX)")).to_be_visible(timeout=180_000)
    expect(page.locator(".sopcoach-lang-switch")).to_have_text("中文")
    assert page.evaluate("document.fonts.check('16px \"Font Awesome 5 Free\"')") or \
        page.locator("link[href*='voila/fontawesome/css/all.min.css']").count() == 1
    assert contexts.blocked == []
    kernel = KERNEL_ID.search(page.content()).group(1)
    page.locator(".sopcoach-trainer-home").click()
    expect(page.get_by_role("heading", name="Trainer home")).to_be_visible(timeout=60_000)
    # the page left behind stops its kernel at once (its shutdown beacon carries the _xsrf cookie)
    poll(lambda: f"Kernel shutdown: {kernel}" in trainer.log.read_text(errors="replace"), 30,
         f"the results page's kernel {kernel} stops when the page is left")
    assert "'_xsrf' argument missing" not in trainer.log.read_text(errors="replace")


def test_monthly_review_in_chromium(trainer: Trainer, page, artifacts) -> None:
    """The monthly review on the real Maven export, then a case study on the simulated one, and the HTML
    report and one table (XLSX) downloaded through the page."""
    import openpyxl
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 2000})
    page.goto(trainer.url("/voila/render/review/monthly_review.ipynb"), timeout=180_000)
    app = page.locator(".sopcoach-review")
    selects = app.locator("select")
    expect(selects.first).to_be_visible(timeout=180_000)
    selects.nth(0).select_option(label=MAVEN.name)
    page.get_by_role("button", name="读取").click()
    expect(page.get_by_text(re.compile(r"已读取 8,800 个商机"))).to_be_visible(timeout=120_000)
    selects.nth(2).select_option(label="全部月份")
    page.get_by_role("button", name="分析").click()
    expect(page.get_by_text("分析完成：全部月份")).to_be_visible(timeout=120_000)
    cards = app.locator(".cards")
    expect(cards).to_contain_text("63.2%")  # won / (won + lost) of the Maven pipeline
    expect(cards).to_contain_text("赢单 4,238 / 赢单与丢单 6,711")
    expect(app.locator(".card.met").first).to_contain_text("目标 35.0% · 已达标")  # judged in words, not colour alone
    # Maven books every loss at one stage: no bottleneck is judged, and the box is neutral, not "fine"
    expect(app.locator(".neutral").first).to_contain_text("没有记录任何丢单，无法判断其转化率：客户接触")
    charts = app.locator("img")
    expect(charts.first).to_be_visible()
    assert charts.first.evaluate("i => i.naturalWidth") > 200  # the funnel chart is a real picture
    page.screenshot(path=str(artifacts / "review_overview.png"), full_page=True)

    page.get_by_role("tab", name="管道").click()  # the pipeline of any month, picked on its own tab
    pipeline_month = app.locator(".widget-dropdown", has_text="管道月份").locator("select")
    expect(pipeline_month).to_have_value("2017-12")  # the latest month when all months are analysed
    expect(app.get_by_text("管道（2017-12，较 2017-11 的变化")).to_be_visible(timeout=60_000)
    pipeline_month.select_option("2017-06")
    expect(app.get_by_text("管道（2017-06，较 2017-05 的变化")).to_be_visible(timeout=60_000)
    expect(app.get_by_text("各阶段停留时间")).to_be_visible()
    expect(app.locator("table:visible", has_text="中位数（工作日）").first).to_contain_text("需求分析")

    page.get_by_role("tab", name="SOP 合规").click()
    expect(app.get_by_role("heading", name="检查项")).to_be_visible()
    expect(app.locator("table:visible").first).to_contain_text("规程第 ")  # each check names its clause's source in words
    page.get_by_role("tab", name="分组").click()
    # Maven's top rep by deals won (the hidden pipeline tab names the reps too: only the shown tab counts)
    expect(app.get_by_text("Darcel Schlecht").locator("visible=true").first).to_be_visible()
    page.get_by_role("tab", name="数据质量").click()
    expect(app.get_by_text("1,425 个商机没有客户").first).to_be_visible()  # open deals without an account
    expect(app.get_by_text("GTXPro").first).to_be_visible()
    page.screenshot(path=str(artifacts / "review_quality.png"), full_page=True)

    selects.nth(0).select_option(label="演示：模拟导出（含已知违规）")
    page.get_by_role("button", name="读取").click()
    expect(page.get_by_text(re.compile(r"已读取 160 个商机"))).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="分析").click()
    expect(page.get_by_text(re.compile("分析完成"))).to_be_visible(timeout=120_000)
    page.get_by_role("tab", name="管道").click()  # the simulated export records every stage change
    times = app.locator("table:visible", has_text="中位数（工作日）").first
    expect(times).to_contain_text("方案演示")
    expect(app.get_by_text("加权预测").first).to_be_visible()
    page.screenshot(path=str(artifacts / "review_pipeline.png"), full_page=True)
    shown = app.inner_text()
    assert not re.search(r"\b(open_here|lost_here|ci_low|ci_high|not_checkable|not_computable|sales_rep)\b", shown)
    page.get_by_role("tab", name="案例研讨").click()
    deviation = app.locator(".callout .clause").first
    expect(deviation).to_be_visible(timeout=60_000)  # the deal with most deviations, its clause quoted
    expect(deviation).not_to_contain_text("seed:")  # the clause's title and text, its seed reference only in the data
    expect(app.get_by_text("讨论问题")).to_be_visible()
    expect(app.locator("ol li").first).to_be_visible()
    expect(app.get_by_text("用时（工作日）").first).to_be_visible()  # each stage against the SOP, in working days
    page.screenshot(path=str(artifacts / "review_case.png"), full_page=True)

    # take it to the meeting: the HTML report and one table as XLSX, downloaded through the page
    name, data = _download(page, "下载 HTML 报告")
    report_page = data.decode("utf-8")
    assert name.endswith(".html") and "data:image/png;base64," in report_page
    assert "http://" not in report_page and "https://" not in report_page
    app.locator("select").filter(has=page.locator("option", has_text="按销售")).select_option(label="按销售")
    name, data = _download(page, "下载 Excel (XLSX)")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header = [c.value for c in sheet[3]]
    assert name.endswith("-by-owner.xlsx") and "赢单率" in header
    assert sheet.cell(row=4, column=header.index("赢单率") + 1).number_format == "0.0%"
    _name, data = _download(page, "下载案例（HTML）")
    case_page = data.decode("utf-8")
    assert "对照SOP" in case_page and "seed:" not in case_page and "https://" not in case_page
    page.screenshot(path=str(artifacts / "review_downloads.png"), full_page=True)
    assert "Traceback" not in page.content()


def _download(page, button: str) -> tuple[str, bytes]:
    """Click the page's download ``button`` once; return the file's suggested name and bytes (one click, no link)."""
    with page.expect_download(timeout=120_000) as dl:
        page.get_by_role("button", name=button).click()
    return dl.value.suggested_filename, Path(dl.value.path()).read_bytes()


def _answer(page, q, index: int) -> None:
    """Answer question ``index`` (0-based) of the page right, through its controls."""
    from support import correct_response
    response = correct_response(q)
    labels = {o.id: shown(o.text, "zh-CN") for o in getattr(q, "options", []) or getattr(q, "blocks", [])}
    box = page.locator(f".sopcoach-q{index + 1}")
    box.wait_for(timeout=60_000)
    if q.type == "single_choice":
        box.locator(".widget-radio-box label", has_text=labels[response]).first.click()
    elif q.type == "true_false":
        box.locator(".widget-radio-box label", has_text="正确" if response else "错误").first.click()
    elif q.type == "multiple_choice":
        for oid in response:
            box.locator(".widget-checkbox label", has_text=labels[oid]).first.click()
    elif q.type == "numeric":
        box.locator(".widget-text input").first.fill(str(response))
        box.locator(".widget-text input").first.press("Enter")
    elif q.type == "ordering":
        for pos, oid in enumerate(response):
            box.locator("select").nth(pos).select_option(label=labels[oid])


def test_recertification_exam_in_chromium(learner_server, tmp_path, page, artifacts) -> None:
    """A certificate holder whose clause changed signs in and takes the two-question recertification
    at /learn/recertification, and passes."""
    from playwright.sync_api import expect

    from sopcoach.authoring.versions import confirm, release, set_sop_version
    from sopcoach.certification.certificates import verify
    from sopcoach.certification.exam import ExamService
    from sopcoach.content.playbook import load_playbook
    from sopcoach.content.quizbank import load_bank, load_blueprint
    from sopcoach.records.models import Certificate
    from sopcoach.records.store import Records
    from support import correct_response, learner_env, sign_in_browser

    content = _content(tmp_path)
    home = tmp_path / "var"
    home.mkdir()
    url = f"sqlite:///{home / 'sopcoach.db'}"
    records = Records(url)
    pb = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", pb)
    bp = load_blueprint(content / "quizzes" / "blueprint.yaml", bank)
    release(records, pb, bank, content / "playbook")
    service = ExamService(records, bank, bp, pb.content_hash(), pb.sop.version)
    seed = 0
    while True:  # certify someone whose draw examined quote-limits
        learner = f"E{seed}"
        code = records.enroll(learner, "钱七")
        aid = service.start_or_resume(learner, seed=seed)
        for qid in records.attempt(aid).question_ids:
            service.answer(aid, qid, correct_response(service.attempt_question(aid, qid)))
        service.submit(aid)
        if any("quote-limits" in r["clauses"] for r in records.attempt(aid).report["results"]):
            break
        seed += 1
    raise_supervisor_limit(content / "playbook")  # and the clause quote-limits says 800,000
    set_sop_version(content / "playbook", "1.1")
    pb = load_playbook(content / "playbook")
    bank = load_bank(content / "quizzes" / "bank", pb)
    out = release(records, pb, bank, content / "playbook")
    confirm(records, out.flagged)

    base = learner_server(content / "notebooks" / "learner", learner_env(content, home), pool_size=0).base
    sign_in_browser(page, base, learner, code, "recertification", ready="")
    assert page.url == f"{base}learn/recertification"
    expect(page.get_by_text("只考查您获得认证后修改过的规程条款")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts / "recert-instructions.png"), full_page=True)
    page.get_by_role("button", name="开始考试").click()
    expect(page.get_by_text("第 1 题，共 2 题")).to_be_visible(timeout=60_000)
    attempt = records.attempts(learner)[-1]
    assert attempt.exam_id.startswith("sales-sop-certification.recert-r")
    for i, qid in enumerate(attempt.question_ids):
        expect(page.get_by_text(f"第 {i + 1} 题，共 2 题")).to_be_visible(timeout=60_000)
        assert "quote-limits" in bank[qid].clauses
        _answer(page, attempt_question(bank, attempt, qid), i)  # a template: the variant this attempt drew
        deadline = time.time() + 60
        while records.answers(attempt.id).get(qid) is None and time.time() < deadline:
            time.sleep(0.1)
        if i == 0:
            page.screenshot(path=str(artifacts / "recert-question.png"), full_page=True)
            page.get_by_role("button", name="下一题").click()
    page.get_by_role("button", name="检查并提交").click()
    page.get_by_role("button", name="提交试卷").click()
    page.get_by_role("button", name="确认提交").click()
    expect(page.locator(".sopcoach-pass", has_text="通过")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts / "recert-pass.png"), full_page=True)
    new = records.run(lambda s: s.query(Certificate).filter_by(attempt_id=attempt.id).one())
    assert verify(records, new.code).status == "current" and new.playbook_version == "1.1"
    records.dispose()
