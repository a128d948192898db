"""What keeps the learner server's one event loop light while a cohort works.

Every message of every learner's kernel passes through the server's single event loop, and every
page is rendered there, so its cost per message and per page is what a cohort waits for
(``benchmarks/cohort.py`` measures it). Three parts of pyzmq, jupyter_server and Voila cost a
cohort more there than the learner server needs:

- :class:`DrainingZMQStream` relays up to :data:`DRAIN_BATCH` waiting IOPub messages of a kernel
  per turn of the event loop. pyzmq's ``ZMQStream`` takes one message per turn, so a view switch
  (a hundred or more widget messages) waited a hundred turns of a loop that, while a cohort
  arrives, also renders pages: up to 20 s for 50 learners on 2 cores, though the kernel had built
  the view in 0.1 s.
- :class:`LearnerKernelManager` records kernel activity (for the idle culler) from the messages
  the page's websocket relay (:class:`ActivityRelay`) receives anyway, reading only their
  headers; jupyter_server's own watcher subscribes to every kernel's IOPub a second time, then
  deserializes and signature-checks every message, parses its dates, and builds a debug log
  record for it (a tenth of the server's loop while a cohort worked).
- :class:`CachedVoilaExporter` renders the page with Jinja templates compiled once per server:
  Voila builds a new exporter, and so a new Jinja environment that compiles every template again,
  for each page it renders (each preheated kernel).
"""
from __future__ import annotations

import json
from typing import Any

import zmq
from jinja2.bccache import Bucket, BytecodeCache
from jupyter_client.manager import AsyncKernelManager
from jupyter_server._tz import utcnow
from jupyter_client.session import DELIM
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager, ServerKernelManager
from traitlets import default
from zmq.eventloop.zmqstream import ZMQStream
from voila import notebook_renderer
from voila.exporter import VoilaExporter

__all__ = [
    "DRAIN_BATCH",
    "ActivityRelay",
    "CachedVoilaExporter",
    "DrainingZMQStream",
    "LearnerKernelManager",
    "MemoryBytecodeCache",
    "PageKernelManager",
    "use_cached_exporter",
]

#: At most this many waiting messages of one stream are handled in one turn of the event loop
#: (the others' turn comes after); a view switch is about 160 IOPub messages.
DRAIN_BATCH = 64


class DrainingZMQStream(ZMQStream):
    """A ``ZMQStream`` that handles up to :data:`DRAIN_BATCH` waiting messages per event.

    Same callbacks and order as ``ZMQStream``; only the number of messages taken per turn of the
    loop differs. Stops early when the socket is empty, the stream is closed or stops receiving.
    """

    def _handle_recv(self) -> None:
        for _ in range(DRAIN_BATCH):
            if self._flushed or self.socket is None or not self.receiving():
                return
            try:
                msg = self.socket.recv_multipart(zmq.NOBLOCK, copy=self._recv_copy)
            except zmq.ZMQError as e:
                if e.errno == zmq.EAGAIN:
                    return
                raise
            if self._recv_callback:
                self._run_callback(self._recv_callback, msg)


class PageKernelManager(ServerKernelManager):
    """jupyter_server's manager of one kernel, whose IOPub streams are :class:`DrainingZMQStream`."""

    def connect_iopub(self, identity: bytes | None = None) -> DrainingZMQStream:  # type: ignore[override]
        """Return a draining stream subscribed to the kernel's IOPub channel."""
        ctx = self.context
        saved = ctx._socket_class
        ctx._socket_class = zmq.Socket  # streams need sync sockets (as jupyter_client's own wrapper does)
        try:
            socket = AsyncKernelManager.connect_iopub(self, identity=identity)
        finally:
            ctx._socket_class = saved
        return DrainingZMQStream(socket, self.loop)


class LearnerKernelManager(AsyncMappingKernelManager):
    """jupyter_server's kernel manager with draining IOPub streams and activity read from the relay.

    The culler reads ``last_activity`` and ``execution_state`` of each kernel. jupyter_server keeps
    them with a second IOPub subscription per kernel, which receives, verifies and parses every
    message the page's websocket relay receives anyway. Here the relay (:class:`ActivityRelay`)
    hands each IOPub message's frames to :meth:`record_activity`, which reads only the JSON header
    and parent header, and the content of ``status`` messages, and sets both as jupyter_server's
    watcher would. A kernel without a page has no relay and so no activity after its start; that
    is what the culler should see (a preheated kernel is kept by Voila's pool, not by activity).
    """

    def start_watching_activity(self, kernel_id: str) -> None:
        """Start ``kernel_id``'s activity record (its page's relay keeps it: :meth:`record_activity`)."""
        kernel = self._kernels[kernel_id]
        kernel.reason = ""
        kernel.last_activity = utcnow()
        # jupyter_server's watcher leaves "starting" at the kernel's first status message; without a
        # watcher that message reaches nobody, and a page's websocket waits for the state to leave
        # "starting" before it relays anything. The kernel is started by now; its page's relay
        # reports "busy"/"idle" from here on.
        kernel.execution_state = "idle"

    def record_activity(self, kernel_id: str, parts: list[bytes]) -> None:
        """Record an IOPub message of ``kernel_id`` for the culler, as jupyter_server's watcher would.

        Parameters
        ----------
        parts : list of bytes
            The message's frames after the identities: signature, header, parent header,
            metadata, content, buffers.
        """
        kernel = self._kernels.get(kernel_id)
        if kernel is None:
            return
        try:
            msg_type = json.loads(parts[1]).get("msg_type")
            parent = json.loads(parts[2]) if parts[2] not in (b"{}", b"") else {}
            parent_type = parent.get("msg_type")
            if (self.track_message_type(msg_type) or self.track_message_type(parent_type)
                    or kernel.execution_state == "busy"):
                self.last_kernel_activity = kernel.last_activity = utcnow()
            if msg_type == "status":
                state = json.loads(parts[4]).get("execution_state")
                if self.track_message_type(parent_type):
                    kernel.execution_state = state
                elif kernel.execution_state == "starting" and state != "starting":
                    kernel.execution_state = "idle"
        except Exception:
            self.log.warning("unreadable IOPub message from kernel %s", kernel_id, exc_info=True)

    @default("kernel_manager_class")
    def _default_kernel_manager_class(self) -> str:
        return "sopcoach.web.serving.PageKernelManager"


class ActivityRelay(ZMQChannelsWebsocketConnection):
    """jupyter_server's kernel websocket relay that also records kernel activity for the culler.

    Every IOPub message the relay passes to the page is first given to the kernel manager's
    :meth:`LearnerKernelManager.record_activity` (when the manager has one).
    """

    def handle_outgoing_message(self, stream: Any, outgoing_msg: list[Any]) -> None:
        if getattr(stream, "channel", None) == "iopub":
            record = getattr(self.multi_kernel_manager, "record_activity", None)
            if record is not None:
                try:
                    parts = outgoing_msg[outgoing_msg.index(DELIM) + 1:]
                except ValueError:
                    parts = []
                if len(parts) >= 5:
                    record(self.kernel_id, parts)
        super().handle_outgoing_message(stream, outgoing_msg)


class MemoryBytecodeCache(BytecodeCache):
    """Jinja's bytecode cache in memory, shared by every environment of the process.

    Keyed by template name, file and source checksum (Jinja's own key) and by whether the
    environment renders asynchronously (the two compile to different code).
    """

    def __init__(self) -> None:
        self._codes: dict[tuple[str, bool], bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._codes.get((bucket.key, bucket.environment.is_async))
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._codes[(bucket.key, bucket.environment.is_async)] = bucket.bytecode_to_string()

    def clear(self) -> None:
        self._codes.clear()


_BYTECODE = MemoryBytecodeCache()


class CachedVoilaExporter(VoilaExporter):
    """Voila's exporter whose Jinja environment takes compiled templates from :data:`_BYTECODE`."""

    def _create_environment(self) -> Any:
        env = super()._create_environment()
        env.bytecode_cache = _BYTECODE
        return env


def use_cached_exporter() -> None:
    """Make Voila's notebook renderer build :class:`CachedVoilaExporter` (call once, at server start)."""
    notebook_renderer.VoilaExporter = CachedVoilaExporter
