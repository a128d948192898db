"""Benchmark: analyse a CRM export of about 1,000,000 events, against pandas reading the same file.

Prints figures, never fails on a time. In the same run it measures

* the baseline: ``pandas.read_csv`` of the events file with default options (best of 3);
* sopcoach: ``read_export`` (decoding, declared date formats, time zones, numbers, duplicates) plus
  ``review`` (KPIs, funnel, bottleneck, every SLA in working time, weekly cadence, quote authority,
  data quality, per-rep/team/region/product breakdowns, trend), best of 3;
* the ratio of the two (target: at most 3), and the peak resident memory of each measurement
  (target: under 2 GB). Each measurement runs in a fresh process, so its peak is its own.

The export is written once by the seeded simulator into ``--data`` (default: a folder in the
temporary directory) and reused by later runs.

Usage::

    .venv/bin/python benchmarks/analytics.py [--events 1000000] [--data DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PER_DEAL = 13.9  # the simulator's average over a year (measured)


def _peak_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def generate(folder: Path, events: int, seed: int) -> dict:
    """Write the simulated export (once) and return its manifest."""
    manifest = folder / "manifest.json"
    if manifest.exists():
        info = json.loads(manifest.read_text())
        if info.get("wanted_events") == events and info.get("seed") == seed:
            return info
    from sopcoach.playbook import load_playbook
    from sopcoach.simulate import simulate
    pb = load_playbook(ROOT / "playbook")
    deals = int(events / EVENTS_PER_DEAL)
    start = time.perf_counter()
    sim = simulate(pb, folder, seed=seed, deals=deals, weeks=52, start="2025-01-06")
    info = {"wanted_events": events, "seed": seed, "events": sim.events, "deals": sim.deals,
            "as_of": sim.as_of.isoformat(), "breaches": len(sim.truth),
            "seconds": round(time.perf_counter() - start, 1)}
    manifest.write_text(json.dumps(info))
    return info


def measure_baseline(folder: Path, repeat: int) -> dict:
    import pandas as pd
    path = folder / "跟进记录.csv"
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        df = pd.read_csv(path)
        times.append(time.perf_counter() - start)
        rows = len(df)
        del df
    return {"seconds": min(times), "all": times, "rows": rows, "peak_mb": _peak_mb()}


def measure_sopcoach(folder: Path, repeat: int) -> dict:
    from sopcoach.analytics import review
    from sopcoach.crm import read_export
    from sopcoach.playbook import load_playbook
    pb = load_playbook(ROOT / "playbook")
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = read_export(folder, "simulated", playbook=pb)
        t1 = time.perf_counter()
        rv = review(data, pb)
        t2 = time.perf_counter()
        run = {"read": t1 - t0, "analysis": t2 - t1, "total": t2 - t0, "events": len(data.events),
               "deals": len(data.deals), "findings": len(rv.compliance.findings),
               "checked": int((rv.compliance.checks["status"] == "checked").sum())}
        if best is None or run["total"] < best["total"]:
            best = run
        del data, rv
    best["peak_mb"] = _peak_mb()
    return best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--data", type=Path)
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--measure", choices=["baseline", "sopcoach"], help=argparse.SUPPRESS)
    args = p.parse_args()
    folder = args.data or Path(tempfile.gettempdir()) / f"sopcoach-bench-{args.events}-{args.seed}"
    if args.measure:
        fn = measure_baseline if args.measure == "baseline" else measure_sopcoach
        print(json.dumps(fn(folder, args.repeat)))
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    info = generate(folder, args.events, args.seed)
    size = (folder / "跟进记录.csv").stat().st_size / 1e6
    print(f"export: {folder}  {info['events']:,} events, {info['deals']:,} deals, events file {size:.0f} MB "
          f"(simulated in {info['seconds']} s, {info['breaches']} injected breaches)")

    def run(kind: str) -> dict:
        out = subprocess.run([sys.executable, __file__, "--measure", kind, "--data", str(folder),
                              "--repeat", str(args.repeat), "--events", str(args.events)],
                             capture_output=True, text=True, env=dict(os.environ), check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = run("baseline")
    ours = run("sopcoach")
    ratio = ours["total"] / base["seconds"]
    print(f"pandas.read_csv (events file, best of {args.repeat}): {base['seconds']:.2f} s "
          f"for {base['rows']:,} rows, peak {base['peak_mb']:.0f} MB")
    print(f"sopcoach read_export:                 {ours['read']:.2f} s "
          f"({ours['events']:,} events incl. synthetic, {ours['deals']:,} deals)")
    print(f"sopcoach review (analysis):           {ours['analysis']:.2f} s "
          f"({ours['checked']} checks run, {ours['findings']} findings)")
    print(f"sopcoach total:                       {ours['total']:.2f} s, peak {ours['peak_mb']:.0f} MB")
    print(f"ratio total / pandas read:            {ratio:.2f}  (target <= 3)")
    print(f"ratio analysis only / pandas read:    {ours['analysis'] / base['seconds']:.2f}")
    print(f"peak memory:                          {ours['peak_mb'] / 1024:.2f} GB  (target < 2 GB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
