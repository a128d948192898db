"""Sub-commands for CRM exports: ``sopcoach analyze`` and ``sopcoach simulate``.

``analyze EXPORT ... [--source maven|salesforce|zoho|simulated|MAPPING.yaml] [--month YYYY-MM]
[--report out.html] [--format text|json] [--strict] [--problems FILE]`` reads an export (files or
folders), analyses it against the playbook and prints the KPIs, the bottleneck, the SOP compliance
and the data quality. Values that could not be read come first: a summary per file and column
(count, one example with its line, the fix; :func:`sopcoach.crm.problems.summary_lines`), before
any figure (on stderr with ``--format json`` or ``--strict``); the KPIs that need them say "not computable" with the reason. The first
20 problems follow the figures; ``--problems FILE`` writes every one, a line each. With
``--strict`` any row problem ends the command with exit code 1 after the summary. A
progress bar (stderr) shows while large files are read. ``--report`` writes a self-contained HTML
report with the charts; ``--format json`` prints the KPIs (``win_rate`` as a fraction 0-1,
``sales_cycle_days`` with ``mean`` and ``median`` calendar days, ``stage_counts``) and the
compliance findings. With ``--month`` both add the month's pipeline (open pipeline by stage,
weighted forecast, average won deal, sales velocity, reps against targets, lost reasons, each
figure's change since the previous month; :mod:`sopcoach.analytics.pipeline`; JSON key ``pipeline``).

``simulate FOLDER [--seed N] [--deals N] [--weeks N]`` writes a simulated export with known SOP
breaches (see :mod:`sopcoach.crm.simulate`) and prints the ground truth.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..config import content_folder
from ..content.playbook import load_playbook
from ..errors import SopcoachError
from ..i18n import current_lang, t


def register(sub: Any) -> None:
    """Add ``analyze`` and ``simulate`` to the ``sopcoach`` command's sub-parsers."""
    a = sub.add_parser("analyze", help="analyse a CRM export against the SOP (KPIs, funnel, compliance)")
    a.add_argument("export", nargs="+", help="export files or folders (CSV, XLSX)")
    a.add_argument("--source", help="maven, salesforce, zoho, simulated or a mapping YAML "
                   "(default: recognised from the file names)")
    a.add_argument("--month", help="YYYY-MM in the playbook's time zone (default: the whole export)")
    a.add_argument("--report", help="write a self-contained HTML report to this file")
    a.add_argument("--format", choices=["text", "json"], default="text")
    a.add_argument("--case", help="add a case study of this deal id to the HTML report")
    a.add_argument("--as-of", dest="as_of", help="the moment the export describes (ISO 8601; without a zone, "
                   "in the playbook's time zone; default: the export's latest timestamp)")
    a.add_argument("--playbook", help="playbook folder (default: playbook/ in the content folder, see --content)")
    a.add_argument("--strict", action="store_true", help="exit 1 on any row problem (after printing their summary)")
    a.add_argument("--problems", help="write every row problem to this file, one 'path:line:column: field: "
                   "message' line each")
    a.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    a.set_defaults(func=_cmd_analyze)
    s = sub.add_parser("simulate", help="write a simulated CRM export with known SOP breaches")
    s.add_argument("folder")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--deals", type=int, default=120)
    s.add_argument("--weeks", type=int, default=13)
    s.add_argument("--start", default="2025-03-03")
    s.add_argument("--playbook")
    s.set_defaults(func=_cmd_simulate)


def _playbook(args: argparse.Namespace) -> Any:
    """Load ``--playbook`` when given, else the content folder's (:func:`sopcoach.config.content_folder`)."""
    if args.playbook:
        return load_playbook(Path(args.playbook))
    return load_playbook(content_folder(args.content) / "playbook")


def _report_path(value: str | None) -> Path | None:
    """Check, before any work, that the HTML report can be written to ``value``."""
    if not value:
        return None
    path = Path(value).expanduser()
    if path.suffix.lower() not in (".html", ".htm") and not path.is_dir():
        raise SopcoachError(f"--report {value}: the report is an HTML file; name it like {path.with_suffix('.html').name}")
    if path.is_dir():
        raise SopcoachError(f"--report {value}: that is a folder; give a file name such as {path / 'review.html'}")
    if not path.parent.is_dir():
        raise SopcoachError(f"--report {value}: the folder {path.parent} does not exist; create it or "
                            "choose another place for the report")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SopcoachError(f"--report {value}: not allowed to write there; choose another place for the report")
    return path


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ..analytics.case_study import case_study  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..analytics.period import Period, months_of, parse_instant  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..analytics.pipeline import pipeline_json, pipeline_lines, pipeline_report  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..analytics.report import render_html  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..analytics.review import review, review_json  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..crm.problems import summary_lines  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..crm.reading import read_export  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    lang = current_lang()
    report = _report_path(args.report)
    playbook = _playbook(args)
    tz = playbook.calendar.timezone
    Period.of(args.month, tz)  # a malformed month fails before the export is read
    as_of = parse_instant(args.as_of, "--as-of", tz) if args.as_of else None
    data = read_export([Path(p) for p in args.export], args.source, playbook=playbook, progress=args.progress)
    first = sys.stdout if args.format == "text" and not args.strict else sys.stderr  # JSON stays JSON
    for line in summary_lines(data.problems, lang):  # first: before any figure
        print(line, file=first)
    if data.problems and first is sys.stdout:
        print(file=first)
    if args.problems:
        try:
            Path(args.problems).write_text("".join(f"{p}\n" for p in data.problems), encoding="utf-8")
        except OSError as exc:
            raise SopcoachError(f"--problems {args.problems}: cannot write the problems ({exc.strerror})") from None
    if args.strict and data.problems:
        print(t(f"sopcoach analyze: --strict：{len(data.problems):,} 个值无法读取，未分析（见上面的摘要）",
                f"sopcoach analyze: --strict: {len(data.problems):,} values could not be read; nothing analysed "
                "(see the summary above)", lang), file=sys.stderr)
        return 1
    months = months_of(data, tz)
    if args.month and args.month not in months:
        span = f"{months[0]} … {months[-1]}" if months else t("无", "none", lang)
        print(t(f"注意：{args.month} 不在这份导出的月份内（{span}），各项数字会是空的。",
                f"note: {args.month} is not among the export's months ({span}); the figures will be empty.",
                lang), file=sys.stderr)
    if args.progress and len(data.events) > 200_000:
        print(t("正在分析……", "analysing ...", lang), file=sys.stderr, flush=True)
    rv = review(data, playbook, args.month, as_of, lang=lang)
    pipe = pipeline_report(data, playbook, args.month, lang) if args.month else None
    if report:
        case = case_study(data, playbook, args.case, rv.compliance, lang=lang) if args.case else None
        try:
            report.write_text(render_html(rv, case=case, playbook=playbook, pipeline=pipe), encoding="utf-8")
        except OSError as exc:
            raise SopcoachError(f"--report {args.report}: cannot write the report ({exc.strerror})") from None
        print(t(f"报告已写入 {args.report}", f"report written to {args.report}", lang), file=sys.stderr)
    if args.format == "json":
        out = review_json(rv)
        if pipe is not None:
            out["pipeline"] = pipeline_json(pipe)
        json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    _print_text(rv, data, lang, playbook)
    if pipe is not None:
        print(file=sys.stdout)
        for line in pipeline_lines(pipe):
            print(line, file=sys.stdout)
    return 0


def _print_text(rv: Any, data: Any, lang: str, playbook: Any) -> None:
    """Print the review for people: every figure named in ``lang``, with its unit; deals with their rep."""
    from ..analytics.report import counted, kpi_verdict, populations_note, rate_text  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    from ..labels import source_words  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    out = sys.stdout
    colon = t("：", ": ", lang)
    nc, nk = t("无法计算", "not computable", lang), t("无法检查", "not checkable", lang)
    for f in data.files:
        print(f.describe(lang), file=out)
    if data.skipped:
        print(t(f"未读取（映射中没有对应的表）：{', '.join(data.skipped)}",
                f"not read (no table of the mapping reads them): {', '.join(data.skipped)}", lang), file=out)
    print(f"\n{t('月份', 'month', lang)}{colon}{rv.month or t('全部', 'all', lang)}", file=out)
    verdicts = {"met": t("已达标", "target met", lang), "near": t("接近目标", "near the target", lang),
                "missed": t("未达标", "target missed", lang)}
    for kid, r in rv.kpis.iterrows():
        if r["status"] == "ok" and r["unit"] == "fraction":
            v = f"{rate_text(r['value'], lang)}{t('（', ' (', lang)}{counted(str(kid), r['numerator'], r['denominator'], lang)}" \
                + t("）", ")", lang)
        elif r["status"] == "ok":
            v = t(f"{r['value']:.1f} 个自然日（{int(r['denominator']):,} 个赢单）",
                  f"{r['value']:.1f} calendar days ({int(r['denominator']):,} won deals)", lang)
        else:
            v = f"{nc}{colon}{r['reason']}"
        if r["status"] == "ok" and not pd_isna(r["target"]):
            target = rate_text(r["target"], lang) if r["unit"] == "fraction" else \
                t(f"{r['target']:.0f} 个自然日", f"{r['target']:.0f} calendar days", lang)
            v += t(f"；目标 {target}，{verdicts[kpi_verdict(r['value'], r['target'], r['unit'])]}",
                   f"; target {target}, {verdicts[kpi_verdict(r['value'], r['target'], r['unit'])]}", lang)
        print(f"  {r['name']}{colon}{v}", file=out)
    names = {s.id: s.name.get(lang) for s in playbook.stages} | {
        "won": t("赢单", "won", lang), "lost": t("丢单", "lost", lang), "unmapped": t("未映射", "unmapped", lang)}
    counts = t("，", ", ", lang).join(f"{names.get(k, k)} {v:,}" for k, v in rv.stage_counts.items()) or "-"
    if rv.stage_counts_gap:
        counts = f"{nc}{colon}{rv.stage_counts_gap}"
    what = t("本期新建商机的当前阶段" if rv.month else "各商机的当前阶段",
             "current stage of the deals created in the period" if rv.month else "current stage of every deal", lang)
    print(f"  {what}{colon}{counts}", file=out)
    print(t(f"  （{populations_note(rv)}）", f"  ({populations_note(rv)})", lang), file=out)
    print(f"\n{t('瓶颈', 'bottleneck', lang)}{colon}{rv.bottleneck.reason}", file=out)
    print(f"\n{t('SOP 合规', 'SOP compliance', lang)}{colon}{rv.compliance.summary(lang)}", file=out)
    for _, r in rv.compliance.checks.iterrows():
        if r["status"] == "checked":
            line = t(f"{r['breaches']:,} 次偏离 / {r['instances']:,} 次检查", f"{r['breaches']:,} deviations / "
                     f"{r['instances']:,} checked", lang)
            note = "；".join(x for x in (r["reason"], r.get("inferred")) if x) if lang != "en" else \
                "; ".join(x for x in (r["reason"], r.get("inferred")) if x)
            print(f"  {r['rule']}{colon}{line}" + (t(f"（{note}）", f" ({note})", lang) if note else ""), file=out)
        else:
            print(f"  {r['rule']}{colon}{nk}{colon}{r['reason']}", file=out)
    if len(rv.compliance.missing):  # each missing field once, however many checks wait for it
        print(t("  缺少的 CRM 字段（补上后，这些规则即可检查）：", "  missing CRM fields (once supplied, these rules can be "
                "checked):", lang), file=out)
        for m in rv.compliance.missing.itertuples():
            print(f"    {m.field}{colon}{m.how}" + t(f"（等待它的规则：{m.rules}）", f" (rules waiting for it: {m.rules})",
                                                      lang), file=out)
    for r in rv.compliance.findings.head(50).itertuples():
        owner = r.owner if isinstance(r.owner, str) and r.owner else t("（无负责人）", "(no owner)", lang)
        print(f"    {t('商机', 'deal', lang)} {r.deal_id} · {owner} · {r.rule}"
              + t(f"（{r.clause_title}，{source_words(r.source, lang)}）",
                  f" ({r.clause_title}, {source_words(r.source, lang)})", lang)
              + f"{colon}{t('应', 'expected', lang)} {r.expected}{t('；', '; ', lang)}{t('实际', 'actual', lang)} {r.actual}",
              file=out)
    if len(rv.compliance.findings) > 50:
        more = len(rv.compliance.findings) - 50
        print("    " + t(f"……另有 {more:,} 处偏离", f"... {more:,} more deviations", lang), file=out)
    print(f"\n{t('数据质量', 'data quality', lang)}{colon.rstrip()}", file=out)
    for _, r in rv.quality.summary.iterrows():
        if r["status"] == "found":
            print(f"  {r['message']}", file=out)
        elif r["status"] == "not_checkable":
            print(f"  {nk}{colon}{r['message']}", file=out)
    if rv.problems:
        print(f"\n{t('无法读取的值', 'row problems', lang)}" + t(f"（{len(rv.problems):,}）", f" ({len(rv.problems):,})", lang)
              + colon.rstrip(), file=out)
        for p in rv.problems[:20]:
            print(f"  {p}", file=out)
        if len(rv.problems) > 20:
            print("  " + t(f"……另有 {len(rv.problems) - 20:,} 个；用 --problems FILE 写出全部",
                           f"... {len(rv.problems) - 20:,} more; write them all with --problems FILE", lang), file=out)


def pd_isna(v: Any) -> bool:
    """True for None and NaN (without importing pandas at start-up)."""
    return v is None or v != v


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ..crm.simulate import simulate  # noqa: PLC0415 - start-up: pandas-based, loaded only by this command
    sim = simulate(_playbook(args), Path(args.folder), seed=args.seed, deals=args.deals,
                   weeks=args.weeks, start=args.start)
    print(f"{sim.deals} deals, {sim.events} events written to {sim.folder} (as of {sim.as_of.isoformat()})")
    for r in sim.truth.itertuples():
        print(f"  {r.check} {r.deal_id} {r.week} {r.detail}".rstrip())
    return 0
