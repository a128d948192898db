"""Time to interactive of a Voila page, measured in headless Chromium with Playwright.

Requests that leave the loopback interface are aborted (nothing may download at run time; the
Voila ``lab`` template links FontAwesome from a CDN), so figures are those of an offline
machine where such requests fail at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from collections.abc import Callable

# Debian's Chromium, its flags and the loopback-only rule are the browser tests' (tests/support.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import CHROMIUM, CHROMIUM_ARGS, NOT_LOOPBACK, stop_process  # noqa: F401 (re-exported to the benchmarks)


def time_to_interactive(
    base_url: str,
    path: str,
    ready_selector: str,
    *,
    browser: object,
    runs: int = 5,
    timeout: float = 120.0,
    before_run: Callable[[int], None] | None = None,
) -> list[float]:
    """Measure seconds from ``page.goto`` until ``ready_selector`` is visible and enabled.

    Each run uses a fresh browser context (empty cache, no cookies), 1280x900 and zh-CN,
    like a learner opening the app for the first time.

    Parameters
    ----------
    base_url : str
        Server address, e.g. ``http://127.0.0.1:8866``.
    path : str
        Page path below ``base_url``, e.g. ``/voila/render/exam.ipynb``.
    ready_selector : str
        Playwright selector of the element whose readiness ends the measurement
        (CSS, ``text=...``, ``role=...``); the first match is used.
    browser : playwright.sync_api.Browser
        A launched browser.
    runs : int, default 5
        Number of page loads.
    timeout : float, default 120.0
        Seconds one run may take before it fails.
    before_run : callable or None, default None
        Called with the run index before each run (not timed), e.g. to wait for a kernel
        pool to refill.

    Returns
    -------
    list[float]
        One duration in seconds per run, in run order.

    Raises
    ------
    playwright.sync_api.TimeoutError
        If the element is not visible within ``timeout``.
    TimeoutError
        If the element stays disabled until ``timeout``.
    """
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    timeout_ms = timeout * 1000
    durations: list[float] = []
    for index in range(runs):
        if before_run is not None:
            before_run(index)
        context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 900}, locale="zh-CN"
        )
        context.route(NOT_LOOPBACK, lambda route: route.abort())
        try:
            page = context.new_page()
            start = time.perf_counter()
            page.goto(url, wait_until="commit", timeout=timeout_ms)
            target = page.locator(ready_selector).first
            target.wait_for(state="visible", timeout=timeout_ms)
            while not target.is_enabled():
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"{ready_selector!r} still disabled after {timeout} s")
                time.sleep(0.005)
            durations.append(time.perf_counter() - start)
        finally:
            context.close()
    return durations
