"""Time to interactive of the exam app against a bare one-button notebook, cold and preheated.

Run ``python benchmarks/exam_app.py`` (``make bench``). One temporary notebooks folder holds a
bare one-button notebook and a copy of ``notebooks/learner/exam.ipynb`` (measured only if it
exists). It is served twice through :func:`sopcoach.web.launch.voila_command`: first without a kernel
pool (every visit starts a kernel), then with the preheated pool (the script waits for the pool
to be full before each visit, so each visit gets a ready kernel). The medians are printed; the
script never judges them.

Servers run with ``SOPCOACH_HOME`` pointing into the temporary folder. Browser requests that
leave loopback are aborted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import requests

REPO = Path(__file__).resolve().parents[1]
try:
    from sopcoach.web.launch import free_port, voila_command
except ImportError:  # not installed: run from the checkout
    sys.path.insert(0, str(REPO / "src"))
    from sopcoach.web.launch import free_port, voila_command

from _tti import CHROMIUM, CHROMIUM_ARGS, stop_process, time_to_interactive

BARE = "bare.ipynb"
EXAM = "exam.ipynb"
BARE_SELECTOR = 'button.widget-button:has-text("Go")'
BARE_CELL = (
    'import ipywidgets as w; b = w.Button(description="Go"); out = w.Output(); '
    'b.on_click(lambda _: out.append_stdout("clicked")); display(w.VBox([b, out]))'
)


class Server:
    """A Voila process with its log, started by :func:`serve`."""

    def __init__(self, base_url: str, log_path: Path) -> None:
        self.base_url = base_url
        self.log_path = log_path

    def count(self, pattern: str) -> int:
        """Return how often the log matches the regex ``pattern``."""
        return len(re.findall(pattern, self.log_path.read_text(errors="replace")))

    def wait_until_count(self, pattern: str, at_least: int, timeout: float = 120.0) -> bool:
        """Wait until ``pattern`` has been logged ``at_least`` times; return whether it was."""
        deadline = time.monotonic() + timeout
        while self.count(pattern) < at_least:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


@contextlib.contextmanager
def serve(root: Path, env: dict[str, str], log_path: Path, pool_size: int) -> Iterator[Server]:
    """Run Voila on ``root`` until the block ends; stop exactly that process."""
    port = free_port()
    argv = voila_command(root, port=port, pool_size=pool_size)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            base_url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"Voila exited with {proc.returncode}; see {log_path}")
                try:
                    requests.get(base_url + "/", timeout=2)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Voila did not answer in 60 s; see {log_path}") from None
                    time.sleep(0.2)
            yield Server(base_url, log_path)
        finally:
            stop_process(proc)


def measure(server: Server, notebooks: dict[str, str], *, browser, runs: int, pooled: bool):
    """Return ``{notebook: durations or error text}`` for one server."""
    results: dict[str, list[float] | str] = {}
    for name, selector in notebooks.items():
        filled = rf"Kernel pool of {re.escape(name)} is filled"
        before_run = None
        if pooled:
            if not server.wait_until_count(filled, 1):
                results[name] = "pool never filled"
                continue
            baseline = server.count(filled)

            def before_run(index: int, filled: str = filled, baseline: int = baseline) -> None:
                # each visit takes a pooled kernel; the refill logs "filled" again when done
                if not server.wait_until_count(filled, baseline + index):
                    print(f"  warning: pool of {filled!r} not refilled before run {index + 1}")

        try:
            results[name] = time_to_interactive(
                server.base_url,
                f"/voila/render/{name}",
                selector,
                browser=browser,
                runs=runs,
                before_run=before_run,
            )
        except Exception as error:  # report and go on: this is a measurement, not a test
            results[name] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
    return results


def _median(value: list[float] | str | None) -> float | None:
    return statistics.median(value) if isinstance(value, list) and value else None


def _fmt(seconds: float | None) -> str:
    return f"{seconds:8.2f}" if seconds is not None else f"{'n/a':>8}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exam-selector",
        default=".sopcoach-ready",
        help="Playwright selector that marks the exam page as ready (default: %(default)s)",
    )
    parser.add_argument(
        "--exam-notebook",
        type=Path,
        default=REPO / "notebooks" / "learner" / EXAM,
        help="exam notebook to copy (default: notebooks/learner/exam.ipynb)",
    )
    parser.add_argument("--runs", type=int, default=5, help="page loads per case (default: 5)")
    parser.add_argument("--pool-size", type=int, default=2, help="preheated kernels per notebook")
    args = parser.parse_args(argv)

    if not CHROMIUM.is_file():
        print(f"{CHROMIUM} is missing: run `make test` (or `make browser`) first.", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sopcoach-bench-") as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "notebooks"
        root.mkdir()
        bare = nbformat.v4.new_notebook()
        bare.cells.append(nbformat.v4.new_code_cell(BARE_CELL))
        bare.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nbformat.write(bare, root / BARE)
        notebooks = {BARE: BARE_SELECTOR}
        if args.exam_notebook.is_file():
            shutil.copy2(args.exam_notebook, root / EXAM)
            notebooks[EXAM] = args.exam_selector
        else:
            print(f"{args.exam_notebook} does not exist yet: measuring the bare notebook only.")

        home = tmp_path / "sopcoach-home"
        home.mkdir()
        env = {**os.environ, "SOPCOACH_HOME": str(home), "PYTHONUNBUFFERED": "1"}

        table: dict[str, dict[str, list[float] | str]] = {}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                for mode, pool_size in (("cold", 0), ("pool", args.pool_size)):
                    print(f"{mode}: pool_size={pool_size}, {args.runs} runs per notebook ...")
                    log_path = tmp_path / f"voila-{mode}.log"
                    with serve(root, env, log_path, pool_size) as server:
                        table[mode] = measure(
                            server, notebooks, browser=browser, runs=args.runs, pooled=pool_size > 0
                        )
                        if pool_size > 0:
                            used = server.count(r"Using pre-heated kernel")
                            print(f"  pre-heated kernels used: {used}")
                    for name, value in table[mode].items():
                        shown = ", ".join(f"{v:.2f}" for v in value) if isinstance(value, list) else value
                        print(f"  {name}: {shown}")
            finally:
                browser.close()

    print()
    print(f"time to interactive, median of {args.runs} (seconds)")
    print(f"{'':6}{'bare':>8}{'exam':>8}{'exam/bare':>11}")
    for mode in ("cold", "pool"):
        bare_s = _median(table[mode].get(BARE))
        exam_s = _median(table[mode].get(EXAM))
        ratio = f"{exam_s / bare_s:11.2f}" if bare_s and exam_s is not None else f"{'n/a':>11}"
        print(f"{mode:6}{_fmt(bare_s)}{_fmt(exam_s)}{ratio}")
    print_scoring()
    return 0


def print_scoring() -> None:
    """Print exact scoring throughput against a float baseline measured in the same run."""
    from _scoring import scoring_throughput
    fig = scoring_throughput(REPO)
    print()
    print(f"scoring throughput, {fig['attempts']} attempts of 30 questions")
    print(f"  exact (Fraction) score_attempt: {fig['exact_per_s']:10.0f} attempts/s")
    print(f"  float baseline (same credits):  {fig['float_per_s']:10.0f} attempts/s")
    print(f"  exact/float time ratio:         {fig['ratio']:10.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
