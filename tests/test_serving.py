"""The learner server's event-loop economies: draining IOPub streams, activity read from the relay, cached templates."""
from __future__ import annotations

import asyncio
import math

import nbformat
import pytest
import zmq
from tornado.ioloop import IOLoop
from zmq.eventloop.zmqstream import ZMQStream

from jupyter_client.session import DELIM
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from sopcoach.web.serving import (DRAIN_BATCH, ActivityRelay, CachedVoilaExporter, DrainingZMQStream,
                                  LearnerKernelManager, _BYTECODE)
from support import ROOT

MESSAGES = 160  # about what one view switch sends


def _turns_to_deliver(stream_class: type[ZMQStream], count: int = MESSAGES) -> tuple[int, list[bytes]]:
    """Queue ``count`` messages on a PULL socket; return the loop turns a ``stream_class`` took to hand them all over."""
    async def run() -> tuple[int, list[bytes]]:
        ctx = zmq.Context()
        pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
        pull.bind("inproc://drain")
        push.connect("inproc://drain")
        for i in range(count):
            push.send_multipart([b"msg", str(i).encode()])
        loop = IOLoop.current()
        got: list[bytes] = []
        done = asyncio.get_running_loop().create_future()
        turns = 0

        def received(msg: list[bytes]) -> None:
            got.append(msg[1])
            if len(got) == count and not done.done():
                done.set_result(None)

        def tick() -> None:  # runs once per turn of the loop
            nonlocal turns
            if not done.done():
                turns += 1
                loop.add_callback(tick)

        stream = stream_class(pull, loop)
        stream.on_recv(received)
        loop.add_callback(tick)
        await asyncio.wait_for(done, 30)
        stream.close()
        push.close(linger=0)
        ctx.term()
        return turns, got

    return asyncio.run(run())


def test_draining_stream_hands_over_a_view_switch_in_a_few_turns():
    """160 waiting messages take ceil(160 / DRAIN_BATCH) turns of the loop, not one turn each."""
    turns, _ = _turns_to_deliver(DrainingZMQStream)
    assert turns <= math.ceil(MESSAGES / DRAIN_BATCH) + 2


def test_plain_zmqstream_takes_a_turn_per_message():
    """The baseline the draining stream fixes: pyzmq's stream hands over one message per turn."""
    turns, _ = _turns_to_deliver(ZMQStream)
    assert turns >= MESSAGES - 2


def test_draining_stream_keeps_the_order():
    """Messages arrive in the order they were sent."""
    _, got = _turns_to_deliver(DrainingZMQStream)
    assert got == [str(i).encode() for i in range(MESSAGES)]


def test_activity_record_follows_a_real_kernel(tmp_path):
    """Fed a real kernel's IOPub messages, as the relay feeds them, ``last_activity`` moves forward and
    the state settles to idle (what the culler reads); no second IOPub subscription is made."""
    async def run() -> tuple[str, bool, str, object]:
        km = LearnerKernelManager(connection_dir=str(tmp_path))
        kid = await km.start_kernel(kernel_name="python3")
        try:
            kernel = km.get_kernel(kid)
            watcher = getattr(kernel, "_activity_stream", None)
            before = kernel.last_activity
            iopub = kernel.connect_iopub()  # what the page's relay subscribes to
            iopub.on_recv(lambda frames: km.record_activity(kid, frames[frames.index(DELIM) + 1:]))
            client = kernel.client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=60)
                reply = await client.execute_interactive("x = 1 + 1", timeout=60)
                deadline = asyncio.get_running_loop().time() + 30
                while ((kernel.last_activity <= before or kernel.execution_state != "idle")
                       and asyncio.get_running_loop().time() < deadline):
                    await asyncio.sleep(0.05)  # the stream delivers on the loop
            finally:
                client.stop_channels()
                iopub.close()
            return reply["content"]["status"], kernel.last_activity > before, kernel.execution_state, watcher
        finally:
            await km.shutdown_kernel(kid, now=True)

    status, moved, state, watcher = asyncio.run(run())
    assert status == "ok"
    assert moved
    assert state == "idle"
    assert watcher is None


def test_learner_server_relays_with_the_activity_record(tmp_path, monkeypatch):
    """The learner server's kernel websockets are :class:`ActivityRelay` connections, which feed the record."""
    from sopcoach.web.server import LearnerServer
    monkeypatch.setenv("SOPCOACH_HOME", str(tmp_path))
    app = LearnerServer()
    app.initialize([str(ROOT / "notebooks" / "learner"), "--LearnerServer.fork_kernels=False", "--no-browser"])
    try:
        assert app.kernel_websocket_connection_class is ActivityRelay
        assert issubclass(ActivityRelay, ZMQChannelsWebsocketConnection)
    finally:
        app.records.dispose()


def _nb() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title <b>&</b>", id="title")]
    return nb


async def _render(exporter) -> str:
    return "".join([html async for html, _ in exporter.generate_from_notebook_node(_nb(), resources={})])


def test_cached_exporter_renders_like_voilas_and_compiles_once():
    """A second exporter takes the compiled templates from the cache and renders the same page."""
    from voila.exporter import VoilaExporter
    _BYTECODE.clear()
    first, second, plain = (cls(template_name="lab", contents_manager=None)
                            for cls in (CachedVoilaExporter, CachedVoilaExporter, VoilaExporter))
    html_first = asyncio.run(_render(first))
    cached = len(_BYTECODE._codes)
    html_second = asyncio.run(_render(second))
    assert cached > 0
    assert len(_BYTECODE._codes) == cached  # nothing compiled again
    assert html_second == html_first == asyncio.run(_render(plain))


@pytest.mark.parametrize("is_async", [True, False])
def test_bytecode_cache_keeps_sync_and_async_apart(is_async):
    """Code compiled for an async environment is never handed to a sync one (and the reverse)."""
    from jinja2 import DictLoader, Environment
    _BYTECODE.clear()
    other = Environment(loader=DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=_BYTECODE, enable_async=not is_async)
    other.get_template("t")
    env = Environment(loader=DictLoader({"t": "{{ 1 + 1 }}"}), bytecode_cache=_BYTECODE, enable_async=is_async)
    tpl = env.get_template("t")
    out = asyncio.run(tpl.render_async()) if is_async else tpl.render()
    assert out == "2"
    assert len(_BYTECODE._codes) == 2
