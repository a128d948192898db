"""The kernel zygote: kernels forked from it start with the content loaded and keep no history."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from jupyter_client.manager import start_new_kernel
from jupyter_client.provisioning import KernelProvisionerFactory

from sopcoach.web.zygote import ZYGOTE_ENV

from .support import stop_process


@pytest.fixture()
def zygote(tmp_path, monkeypatch):
    path = str(tmp_path / "zygote.sock")
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path / "home"))
    log = tmp_path / "zygote.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "sopcoach.web.zygote", path, str(os.getpid())], stderr=err)
    deadline = time.monotonic() + 60
    while "zygote ready" not in log.read_text():  # it says so once it listens
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    monkeypatch.setenv(ZYGOTE_ENV, path)
    # as the learner server asks for it; the factory is a singleton that read the variable once
    monkeypatch.setenv("JUPYTER_DEFAULT_PROVISIONER_NAME", "sopcoach-fork")
    monkeypatch.setattr(KernelProvisionerFactory.instance(), "default_provisioner_name", "sopcoach-fork")
    yield proc
    stop_process(proc)


def _run(client, code: str) -> str:
    out: list[str] = []
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
        m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out).strip()


def test_forked_kernel_starts_with_the_content_loaded_and_no_history(zygote):
    km, client = start_new_kernel(kernel_name="python3")
    try:
        assert km.provisioner.__class__.__name__ == "ForkProvisioner"
        assert km.provisioner.process.__class__.__name__ == "ForkedProcess"  # forked, not a new Python
        loaded = _run(client, "from sopcoach.config import _content, load_content\n"
                              "before = _content.cache_info()\n"
                              "load_content()\n"
                              "after = _content.cache_info()\n"
                              "print(before.currsize, after.hits - before.hits, after.misses - before.misses)")
        assert loaded == "1 1 0"  # loaded in the zygote: a hit, nothing read again
        assert _run(client, "print(get_ipython().history_manager.enabled)") == "False"
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


BAD_WIDGET_MESSAGES = [
    {"method": "update", "state": {"value": "not a number"}, "buffer_paths": []},  # fails the trait's validation
    {"method": "update", "state": "not a mapping", "buffer_paths": []},
    {"method": "update", "state": {"value": 1}, "buffer_paths": [["value", 0]]},  # a buffer that is not there
    {"method": "custom", "content": {"event": "click"}},  # a slider takes no click
    {"method": "no such method"},
    {"no method": 1},
]


def _iopub_until_idle(client, msg_id: str) -> list[dict]:
    """Every IOPub message up to the kernel's idle after the request ``msg_id``."""
    out = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = client.get_iopub_msg(timeout=60)
        out.append(m)
        if (m["msg_type"] == "status" and m["parent_header"].get("msg_id") == msg_id
                and m["content"]["execution_state"] == "idle"):
            return out
    raise AssertionError("the kernel did not finish")


def _send_malformed(client, guard: bool) -> list[dict]:
    """Make a slider (after the app's log set-up when ``guard``), send it every malformed message and a
    comm message for an unknown comm, then set it to 7 by a good message; return what IOPub carried."""
    setup = "from sopcoach.ui._common import log_to_server\nlog_to_server()\n" if guard else ""
    model = _run(client, setup + "import ipywidgets as w\nslider = w.IntSlider()\nprint(slider.model_id)")
    for comm_id, data in [*((model, d) for d in BAD_WIDGET_MESSAGES),
                          ("0" * 32, {"method": "update", "state": {"value": 2}, "buffer_paths": []}),
                          (model, {"method": "update", "state": {"value": 7}, "buffer_paths": []})]:
        client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))
    return _iopub_until_idle(client, client.execute("print('value', slider.value)"))


def test_a_malformed_widget_message_sends_no_traceback_to_the_page(zygote, tmp_path):
    """In a page kernel (forked as the learner server does) bad widget messages are logged to the
    server's log; IOPub, which the page receives, carries no error, traceback or install path, and the
    widget still takes the next good message."""
    km, client = start_new_kernel(kernel_name="python3")
    try:
        sent = _send_malformed(client, guard=True)
        text = repr([m["content"] for m in sent])
        assert not [m for m in sent if m["msg_type"] == "error"]
        assert not [m for m in sent if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"], text
        assert "Traceback" not in text and "site-packages" not in text and sys.prefix not in text
        assert {"name": "stdout", "text": "value 7\n"} in [m["content"] for m in sent]
        log = (tmp_path / "zygote.log").read_text()
        assert log.count("a widget message failed (not shown to the page)") >= 3 and "TraitError" in log
        assert "No such comm: " + "0" * 32 in log
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)


def test_without_the_guard_the_traceback_reaches_iopub(zygote):
    """The check above can fail: without the app's set-up ipywidgets sends the traceback to the page."""
    km, client = start_new_kernel(kernel_name="python3")
    try:
        sent = _send_malformed(client, guard=False)
        errors = [m for m in sent if m["msg_type"] == "error"]
        assert errors and "site-packages" in repr(errors[0]["content"]["traceback"])
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
