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
