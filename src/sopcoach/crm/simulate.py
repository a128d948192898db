"""A seeded simulator of a CRM export with known, injected SOP breaches.

The simulated company follows the playbook: every deal moves through the SOP stages, every time
limit of ``slas.yaml`` is met (due times from the playbook's business calendar; a scheduled one,
such as the satisfaction call 30 days after the deal, seed:1.2.1, falls on its day or, about half
the time, elsewhere in the company's tolerance window), every customer
gets at least its tier's weekly follow-ups (seed:3.1.2), and every quote above the rep's authority
names an approver (seed:2.3.1). Then a chosen number of breaches of each kind is injected, and
their list is returned as the ground truth: a compliance check must find each of them and nothing
else. The same export is material for training case studies.

The files look like a Chinese CRM's Excel "CSV UTF-8" export (UTF-8 with BOM, Chinese headers,
Beijing time, amounts with thousands separators, ids with leading zeros) and are read with the
built-in ``simulated`` mapping:

* ``商机.csv`` deals, ``跟进记录.csv`` activities (stage changes, calls, e-mails, visits, tasks),
  ``销售人员.csv`` staff (role, team, region), ``产品.csv`` the product list.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import pandas as pd

from ..errors import SimulationError

__all__ = ["BREACH_KINDS", "Simulation", "simulate"]

#: Breach kinds the simulator can inject: one per SLA of the default playbook, plus the weekly
#: follow-up cadence and the quote authority.
BREACH_KINDS = ("sla:first_contact", "sla:first_proposal", "sla:quotation_cycle", "sla:delivery",
                "sla:satisfaction_call", "sla:email_reply", "sla:tech_first_solution", "cadence",
                "authority")
DEFAULT_BREACHES = {k: 2 for k in BREACH_KINDS}

_STAGE_NAMES = {"first_contact": "客户接触", "needs_analysis": "需求分析", "solution_demo": "方案演示",
                "quotation": "报价", "contract_negotiation": "合同谈判", "won": "赢单", "lost": "输单"}
_ROLE_NAMES = {"sales_rep": "销售代表", "account_manager": "客户经理", "sales_supervisor": "销售主管",
               "sales_director": "销售总监"}
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞", "平", "刚", "丽"]
_SUBJECTS = {"call": ["电话跟进", "确认需求细节", "跟进决策进度", "回访客户"],
             "meeting": ["上门拜访", "产品演示", "方案讲解", "商务洽谈"]}
#: chance of advancing out of each stage (quotation is the simulated company's weak stage)
_ADVANCE = {"first_contact": 0.92, "needs_analysis": 0.8, "solution_demo": 0.75, "quotation": 0.45,
            "contract_negotiation": 0.85}


@dataclass(frozen=True)
class Simulation:
    """A simulated export and its ground truth.

    ``truth``: one row per injected breach; columns ``check`` (``sla:<id>``, ``cadence``,
    ``authority``; the check ids of :func:`sopcoach.analytics.compliance.check_compliance`), ``deal_id``,
    ``week`` (ISO week ``YYYY-Www`` for cadence, else empty) and ``detail`` (str).
    ``as_of`` is the end of the simulated period (UTC): pass it to the compliance check.
    """

    folder: Path
    files: tuple[Path, ...]
    truth: pd.DataFrame
    as_of: pd.Timestamp
    seed: int
    events: int
    deals: int


def simulate(playbook: Any, folder: Path | str, *, seed: int = 0, deals: int = 120,
             start: date | str = "2025-03-03", weeks: int = 13,
             breaches: Mapping[str, int] | None = None) -> Simulation:
    """Write a realistic export that follows the playbook, except for injected breaches.

    Parameters
    ----------
    playbook : Playbook
        Its stages, SLAs, tiers, authority limits and business calendar drive the simulation.
    folder : path-like
        Where to write the files (created if needed).
    seed : int
        The same seed gives byte-identical files.
    deals : int
        Number of deals (leads assigned), spread over the period.
    start : date or ``YYYY-MM-DD``
        First day of the period (moved back to its Monday).
    weeks : int
        Length of the period in weeks (>= 4); the export's ``as_of`` is its end.
    breaches : mapping of str to int, optional
        How many breaches of each kind of :data:`BREACH_KINDS` to inject (default 2 each).

    Returns
    -------
    Simulation

    Raises
    ------
    SimulationError
        When a breach kind is unknown or there are not enough suitable deals to inject it.
    """
    return _Simulator(playbook, Path(folder), seed, deals, start, weeks,
                      dict(DEFAULT_BREACHES if breaches is None else breaches)).run()


class _Simulator:
    def __init__(self, playbook: Any, folder: Path, seed: int, n_deals: int, start: Any, weeks: int,
                 breaches: dict[str, int]):
        unknown = sorted(set(breaches) - set(BREACH_KINDS))
        if unknown:
            raise SimulationError(f"unknown breach kinds {unknown}; use {', '.join(BREACH_KINDS)}")
        if weeks < 4:
            raise SimulationError(f"weeks must be at least 4 (got {weeks})")
        self.pb, self.folder, self.seed = playbook, folder, seed
        self.rng = random.Random(seed)
        self.cal = playbook.business_calendar()
        self.tz = self.cal.tzinfo
        d0 = date.fromisoformat(start) if isinstance(start, str) else start
        d0 -= timedelta(days=d0.weekday())
        self.start = datetime.combine(d0, time(0), tzinfo=self.tz)
        self.until = self.start + timedelta(weeks=weeks)
        self.n_deals = n_deals
        self.want = breaches
        self.sla = {s.id: s for s in playbook.slas}
        need_slas = {k.split(":", 1)[1] for k in BREACH_KINDS if k.startswith("sla:")}
        need_stages = set(_STAGE_NAMES) - {"won", "lost"}
        missing = sorted(need_slas - set(self.sla)) + sorted(need_stages - {st.id for st in playbook.stages})
        if missing:
            raise SimulationError(f"the simulator follows the default playbook's process and needs its SLAs "
                                  f"and stages; this playbook lacks {', '.join(missing)}")
        self.rows: list[dict[str, Any]] = []
        self.deal_rows: list[dict[str, Any]] = []
        self.truth: list[dict[str, Any]] = []
        self.seq = 0

    # -------------------------------------------------------------------------------- helpers
    def _name(self) -> str:
        return self.rng.choice(_SURNAMES) + "".join(self.rng.sample(_GIVEN, 2))

    def _minute(self, dt: datetime) -> datetime:
        return dt.replace(second=0, microsecond=0)

    def _working_time(self, day: date) -> datetime:
        while not self.cal.is_working_day(day):
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, self.rng.randint(9, 16), self.rng.randint(0, 59), tzinfo=self.tz)

    def _due(self, start: datetime, sla_id: str) -> datetime:
        return self.cal.add(start, self.sla[sla_id].duration).astimezone(self.tz)

    def _daytime(self, low: datetime, high: datetime) -> datetime:
        """A whole-minute time in ``(low, high)``, during the day (08:00-20:00) when the span allows."""
        span = (high - low).total_seconds()
        t = low
        for _ in range(12):
            t = self._minute(low + timedelta(seconds=span * self.rng.uniform(0.05, 0.95)))
            if 8 <= t.hour < 20:
                break
        return t if t > low else low + timedelta(minutes=1)

    def _on_time(self, start: datetime, sla_id: str) -> datetime:
        """A time after ``start`` and safely before the SLA's due time (whole minutes)."""
        due = self._due(start, sla_id)
        return min(self._daytime(start, due - timedelta(minutes=2)), due - timedelta(minutes=1))

    def _late(self, start: datetime, sla_id: str) -> datetime:
        """A time clearly after the SLA's due time (1.5 to 30 hours late)."""
        due = self._due(start, sla_id)
        return self._daytime(due + timedelta(hours=1.5), due + timedelta(hours=30))

    def _at_day(self, day: date, after: datetime) -> datetime:
        """A whole-minute time during the working day (09:00-17:59) of ``day``, after ``after``."""
        when = datetime(day.year, day.month, day.day, self.rng.randint(9, 17), self.rng.randint(0, 59), tzinfo=self.tz)
        return max(when, self._minute(after) + timedelta(minutes=1))

    def _scheduled(self, start: datetime, sla_id: str, verdict: str) -> datetime:
        """The time of a scheduled SLA's end event: ``on_time`` on the due day or inside the company's
        tolerance window, ``too_early`` a few days after the start but before the window, ``late``
        1-10 days after the window."""
        tol = self.sla[sla_id].tolerance
        due_day = self._due(start, sla_id).date()
        first, last = self.cal.day_window(due_day, tol.before, tol.after, tol.unit)
        if verdict == "too_early":  # recorded before the export ends
            before = min(first, self.until.date())
            day = start.date() + timedelta(days=self.rng.randint(1, max((before - start.date()).days - 1, 1)))
        elif verdict == "late":
            day = last + timedelta(days=self.rng.randint(1, 10))
        elif self.rng.random() < 0.5:
            day = due_day
        else:
            day = first + timedelta(days=self.rng.randint(0, (last - first).days))
        return self._at_day(day, start)

    def _event(self, deal: dict[str, Any], kind: str, when: datetime, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        row = {"记录编号": f"E{self.seq:08d}", "商机编号": deal["id"], "客户编号": deal["account"],
               "类型": kind, "方向": "", "时间": when, "执行人": deal["owner"], "阶段": "", "事项": "",
               "主题": "", "报价金额": "", "折扣": "", "审批人": ""}
        row.update(fields)
        self.rows.append(row)
        deal["events"].append(row)
        return row

    def _take(self, kind: str, ok: bool = True) -> bool:
        """Decide whether to inject a breach of ``kind`` now (while some are still wanted)."""
        left = self.want.get(kind, 0) - sum(1 for t in self.truth if t["check"] == kind)
        return ok and left > 0 and self.rng.random() < 0.5

    def _breach(self, kind: str, deal: dict[str, Any], detail: str, week: str = "") -> None:
        self.truth.append({"check": kind, "deal_id": deal["id"], "week": week, "detail": detail})

    # -------------------------------------------------------------------------------- staff
    def _staff(self) -> None:
        """Supervisors lead teams of reps (about one rep per 100 deals, at least ten)."""
        regions = ["华东", "华北", "华南", "西南"]
        n_reps = max(10, min(400, self.n_deals // 100))
        n_teams = max(4, n_reps // 10)
        names: set[str] = set()
        while len(names) < n_reps + n_teams:
            names.add(self._name())
        pool = sorted(names)
        self.rng.shuffle(pool)
        teams = [(f"{regions[i % 4]}{i // 4 + 1}组", regions[i % 4]) for i in range(n_teams)]
        self.staff = [{"姓名": pool[i], "角色": _ROLE_NAMES["sales_supervisor"], "团队": team, "区域": region}
                      for i, (team, region) in enumerate(teams)]
        for j, name in enumerate(pool[n_teams:]):
            team, region = teams[j % n_teams]
            role = "account_manager" if j % 5 == 0 else "sales_rep"
            self.staff.append({"姓名": name, "角色": _ROLE_NAMES[role], "团队": team, "区域": region})
        self.reps = [s for s in self.staff if s["角色"] != _ROLE_NAMES["sales_supervisor"]]
        self.supervisor_of = {s["团队"]: s["姓名"] for s in self.staff if s["角色"] == _ROLE_NAMES["sales_supervisor"]}
        self.role_of = {s["姓名"]: next(k for k, v in _ROLE_NAMES.items() if v == s["角色"]) for s in self.staff}

    # -------------------------------------------------------------------------------- one deal
    def _deal(self, i: int) -> None:
        rng = self.rng
        rep = rng.choice(self.reps)
        tiers = [t.id for t in self.pb.tiers]
        last_day = (self.until - timedelta(days=10)).date()
        span = (last_day - self.start.date()).days
        created = self._working_time(self.start.date() + timedelta(days=rng.randrange(max(span, 1))))
        product = rng.choice(self.pb.products)
        deal = {"id": f"{i:06d}", "account": f"C{rng.randrange(1, 10 ** 5):05d}",
                "tier": rng.choices(tiers, weights=[2, 3, 4][:len(tiers)])[0], "owner": rep["姓名"],
                "team": rep["团队"], "product": product.id, "created": created,
                "amount": Decimal(rng.randrange(20, 600)) * 1000, "stage": "first_contact",
                "closed": None, "events": [], "replies": []}
        self.deal_rows.append(deal)
        until = self.until

        def stage(name: str, when: datetime) -> bool:
            if when >= until:
                return False
            self._event(deal, "阶段变更", when, 阶段=_STAGE_NAMES[name])
            deal["stage"] = name
            if name in ("won", "lost"):
                deal["closed"] = when
            return True

        def milestone(sla_id: str, start: datetime, kind: str, label: str, **fields: Any) -> datetime | None:
            """Record the end event of ``sla_id`` (on time, or late when a breach is injected)."""
            check = f"sla:{sla_id}"
            due = self._due(start, sla_id)
            if self.sla[sla_id].scheduled:
                verdict = "on_time"
                if self._take(check, start + timedelta(days=3) < until):  # a late call needs the window to end first
                    verdict = "late" if due + timedelta(days=20) < until and rng.random() < 0.5 else "too_early"
                    self._breach(check, deal, f"{label} {verdict.replace('_', ' ')}: due {due:%Y-%m-%d}")
                when = self._scheduled(start, sla_id, verdict)
            elif self._take(check, due + timedelta(hours=31) < until):
                when = self._late(start, sla_id)
                self._breach(check, deal, f"{label} after {sla_id} due {due:%Y-%m-%d %H:%M}")
            else:
                when = self._on_time(start, sla_id)
            if when >= until:
                return None
            self._event(deal, kind, when, 事项=label, **fields)
            return when

        stage("first_contact", created)
        fc = milestone("first_contact", created, "电话", "首次接触", 方向="呼出", 主题="欢迎致电")
        self._emails(deal, created)
        if fc is None:
            return
        t = self._daytime(fc + timedelta(hours=4), fc + timedelta(hours=72))
        if rng.random() > _ADVANCE["first_contact"]:
            stage("lost", t)
            return
        if not stage("needs_analysis", t):
            return
        t = self._daytime(t + timedelta(days=1), t + timedelta(days=8))
        if rng.random() > _ADVANCE["needs_analysis"]:
            stage("lost", t)
            return
        if not stage("solution_demo", t):
            return
        needs_confirmed = t
        sent = milestone("first_proposal", needs_confirmed, "任务", "发送初步方案", 主题="初步方案")
        if sent is None:
            return
        ready = sent
        if rng.random() < 0.35:
            issue = self._daytime(needs_confirmed + timedelta(hours=2), needs_confirmed + timedelta(hours=40))
            if issue < until:
                self._event(deal, "任务", issue, 事项="技术问题", 主题="客户提出技术问题")
                solved = milestone("tech_first_solution", issue, "任务", "技术方案", 主题="技术问题初步方案")
                if solved is None:
                    return
                ready = max(ready, solved)
        t = self._daytime(ready + timedelta(days=1), ready + timedelta(days=8))
        if rng.random() > _ADVANCE["solution_demo"]:
            stage("lost", t)
            return
        if not stage("quotation", t):
            return
        disc = Decimal(rng.randrange(0, 19)) / 100
        role = self.role_of[deal["owner"]]
        needs_approval = len(self.pb.approval_chain(role, deal["amount"], disc)) > 1
        approver = self.supervisor_of[deal["team"]] if needs_approval else ""
        quote_fits = self._due(t, "quotation_cycle") + timedelta(hours=31) < until
        inject = needs_approval and self._take("authority", quote_fits)
        if inject:
            approver = ""
            self._breach("authority", deal, f"quote {deal['amount']} at {disc:.0%} by {role} without approval")
        quoted = milestone("quotation_cycle", t, "任务", "发送报价单", 主题="正式报价单",
                           报价金额=f"{deal['amount']:,.2f}", 折扣=f"{int(disc * 100)}%", 审批人=approver)
        if quoted is None:
            return
        t = self._daytime(quoted + timedelta(days=2), quoted + timedelta(days=12))
        if rng.random() > _ADVANCE["quotation"]:
            stage("lost", t)
            return
        if not stage("contract_negotiation", t):
            return
        t = self._daytime(t + timedelta(days=2), t + timedelta(days=12))
        if rng.random() > _ADVANCE["contract_negotiation"]:
            stage("lost", t)
            return
        if not stage("won", t):
            return
        milestone("delivery", t, "任务", "完成交付", 主题="交付验收")
        milestone("satisfaction_call", t, "电话", "满意度回访", 方向="呼出", 主题="满意度回访")

    def _emails(self, deal: dict[str, Any], created: datetime) -> None:
        """Inbound customer e-mails every 4-12 days while the deal is open, each answered."""
        t = created + timedelta(days=self.rng.uniform(0.5, 6))
        deal["email_times"] = []
        while True:
            when = self._working_time(t.date())
            if when < t:
                when = self._working_time(t.date() + timedelta(days=1))
            deal["email_times"].append(when)
            t = when + timedelta(days=self.rng.uniform(4, 12))
            if t >= self.until:
                break

    def _finish_emails(self, deal: dict[str, Any]) -> None:
        end = deal["closed"] or self.until
        for when in deal.pop("email_times"):
            if when >= end:
                break
            self._event(deal, "邮件", when, 方向="收到", 主题="客户来信")
            if self._take("sla:email_reply", when + timedelta(hours=60) < self.until):
                reply = self._late(when, "email_reply")
                self._breach("sla:email_reply", deal, f"reply to the e-mail of {when:%Y-%m-%d %H:%M} is late")
            else:
                reply = self._on_time(when, "email_reply")
            if reply < self.until:
                self._event(deal, "邮件", reply, 方向="发出", 主题="回复：客户来信")

    # -------------------------------------------------------------------------------- cadence
    def _cadence(self, deal: dict[str, Any]) -> None:
        """Add follow-ups so every full week open has at least the tier's minimum (or one fewer)."""
        tier = next(t for t in self.pb.tiers if t.id == deal["tier"])
        need = tier.min_weekly_follow_ups
        if need <= 0:
            return
        created = deal["created"]
        stop = min(deal["closed"] or self.until, self.until)
        monday = datetime.combine(created.date() - timedelta(days=created.weekday()), time(0), tzinfo=self.tz)
        first = monday if monday == created else monday + timedelta(days=7)
        week = first
        used = {e["时间"] for e in deal["events"]}
        while week + timedelta(days=7) <= stop:
            nxt = week + timedelta(days=7)
            have = sum(1 for e in deal["events"] if week <= e["时间"] < nxt and e["类型"] in ("电话", "邮件", "拜访")
                       and e["方向"] != "收到")
            iso = week.isocalendar()
            label = f"{iso[0]}-W{iso[1]:02d}"
            inject = (have < need and nxt + timedelta(days=14) <= self.until
                      and self._take("cadence"))
            target = need - 1 if inject else need + self.rng.randint(0, 1)
            if inject:
                self._breach("cadence", deal, f"{max(have, target)} follow-ups, {need} required", label)
            for _ in range(max(0, target - have)):
                day = week.date() + timedelta(days=self.rng.randrange(7))
                for _try in range(20):
                    when = datetime(day.year, day.month, day.day, self.rng.randint(9, 17),
                                    self.rng.randint(0, 59), tzinfo=self.tz)
                    if when not in used:
                        break
                used.add(when)
                kind = self.rng.choice(["电话", "拜访"])
                subject = self.rng.choice(_SUBJECTS["call" if kind == "电话" else "meeting"])
                self._event(deal, kind, when, 方向="呼出" if kind == "电话" else "", 主题=subject)
            week = nxt

    # -------------------------------------------------------------------------------- run
    def run(self) -> Simulation:
        self._staff()
        for i in range(1, self.n_deals + 1):
            self._deal(i)
        for deal in self.deal_rows:
            self._finish_emails(deal)
        for deal in self.deal_rows:
            self._cadence(deal)
        missing = {k: n - sum(1 for t in self.truth if t["check"] == k) for k, n in self.want.items()}
        short = {k: v for k, v in missing.items() if v > 0}
        if short:
            raise SimulationError(f"could not inject {short} breaches with {self.n_deals} deals over the period; "
                                  "simulate more deals or weeks")
        return self._write()

    def _write(self) -> Simulation:
        self.folder.mkdir(parents=True, exist_ok=True)
        fmt = "%Y-%m-%d %H:%M"
        deals = [{"商机编号": d["id"], "客户编号": d["account"], "客户等级": f"{d['tier']}类", "产品": d["product"],
                  "负责人": d["owner"], "阶段": _STAGE_NAMES[d["stage"]], "金额": f"{d['amount']:,.2f}",
                  "创建时间": d["created"].strftime(fmt),
                  "关闭时间": d["closed"].strftime(fmt) if d["closed"] else ""} for d in self.deal_rows]
        self.rows.sort(key=lambda r: (r["时间"], r["记录编号"]))
        events = [dict(r, 时间=r["时间"].strftime(fmt)) for r in self.rows]
        products = [{"产品编号": p.id, "产品名称": p.name.get("zh-CN"), "目录价": f"{p.list_price:,.2f}"}
                    for p in self.pb.products]
        files = []
        for name, rows in (("商机.csv", deals), ("跟进记录.csv", events), ("销售人员.csv", self.staff),
                           ("产品.csv", products)):
            path = self.folder / name
            with open(path, "w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\r\n")
                writer.writeheader()
                writer.writerows(rows)
            files.append(path)
        truth = pd.DataFrame(self.truth, columns=["check", "deal_id", "week", "detail"])
        return Simulation(self.folder, tuple(files), truth, pd.Timestamp(self.until).tz_convert("UTC"),
                          self.seed, len(events), len(deals))

