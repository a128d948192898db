"""Capture and forge Jupyter kernel websocket traffic of a Voila page (protocol v1.kernel.websocket.jupyter.org)."""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

from jupyter_server.services.kernels.connection.base import (deserialize_msg_from_ws_v1,
                                                             serialize_msg_to_ws_v1)

# Keep a handle on every WebSocket the page opens, so a test can send forged frames on it.
KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sopcoachSockets = [];
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    window.__sopcoachSockets.push(ws);
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


class Traffic:
    """Every websocket frame and text HTTP body a page receives (and the frames it sends)."""

    def __init__(self, page):
        self.received: list[bytes | str] = []
        self.sent: list[bytes | str] = []
        self.bodies: list[str] = []
        page.on("websocket", self._on_ws)
        page.on("response", self._on_response)

    def _on_ws(self, ws) -> None:
        ws.on("framereceived", lambda payload: self.received.append(payload))
        ws.on("framesent", lambda payload: self.sent.append(payload))

    def _on_response(self, response) -> None:
        ctype = response.headers.get("content-type", "")
        if any(k in ctype for k in ("html", "json", "text/plain", "yaml")):
            try:
                self.bodies.append(response.text())
            except Exception:
                pass

    def messages(self, which: str = "received") -> list[dict]:
        """Decode the binary v1 frames into ``{channel, header, parent_header, metadata, content}``."""
        out = []
        for frame in getattr(self, which):
            if isinstance(frame, str):
                msg = json.loads(frame)
                out.append(msg)
                continue
            channel, parts = deserialize_msg_from_ws_v1(frame)
            header, parent, metadata, content = (json.loads(p) for p in parts[:4])
            out.append({"channel": channel, "header": header, "parent_header": parent,
                        "metadata": metadata, "content": content})
        return out

    def session_id(self) -> str:
        return self.messages("sent")[0]["header"]["session"]


_PATTERNS = [
    # Tornado's XSRF token (version|mask|masked token|time) in the sign-in page's form
    (re.compile(r"2\|[0-9a-f]{8}\|[0-9a-f]{32}\|\d+"), "<xsrf>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}[0-9a-f_]*"), "<uuid>"),
    (re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"), "<hex>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"剩余时间 \d\d:\d\d|Time left \d\d:\d\d"), "<timer>"),
    (re.compile(r'"execution_count": \d+'), '"execution_count": N'),
    (re.compile(r"Tip: [^\n]*"), "Tip: <random IPython tip>"),
    (re.compile(r"/api/kernels/[^\"'?]+"), "/api/kernels/<id>"),
]


def normalise(text: str) -> str:
    """Replace ids, timestamps and the countdown by placeholders."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def canonical(obj):
    """Return ``obj`` with ids and times replaced, and mappings ordered by their normalised content.

    Widget states arrive as mappings keyed by random model ids; ordering them after the ids are
    replaced makes two runs comparable.
    """
    if isinstance(obj, dict):
        items = [(normalise(str(k)), canonical(v)) for k, v in obj.items()]
        return sorted(items, key=lambda kv: json.dumps(kv, ensure_ascii=False))
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    if isinstance(obj, str):
        return normalise(obj)
    return obj


def _timing_noise(m: dict) -> bool:
    """True for ipykernel's "No such comm" warning (the page updated a widget the kernel had
    already closed: a timing race between two page changes) and for the kernel's
    ``iopub_welcome`` (sent to a new IOPub subscriber, which the page sees or not depending on
    when its socket subscribed): neither is something the app sent."""
    c = m["content"]
    if m["header"].get("msg_type") == "iopub_welcome":
        return True
    return (m["header"].get("msg_type") == "stream" and c.get("name") == "stderr"
            and str(c.get("text", "")).startswith("No such comm"))


def normalised_messages(traffic: Traffic) -> set[str]:
    """The distinct received messages, without headers, ids and times."""
    return {json.dumps(canonical({"channel": m["channel"], "type": m["header"].get("msg_type"),
                                  "content": m["content"]}), ensure_ascii=False)
            for m in traffic.messages() if not _timing_noise(m)}


def comm_messages_from_kernel(traffic: Traffic) -> dict[str, dict]:
    """Return the widget states the kernel sent (comm_open and the control comm's update_states), by model id."""
    out = {}
    for m in traffic.messages():
        c = m["content"]
        if m["header"].get("msg_type") == "comm_open":
            out[c["comm_id"]] = c.get("data", {}).get("state", {})
        elif m["header"].get("msg_type") == "comm_msg" and c.get("data", {}).get("method") == "update_states":
            for mid, model in c["data"].get("states", {}).items():
                out[mid] = model.get("state", model)
    return out


def forge(page, session: str, comm_id: str, data: dict) -> None:
    """Send a comm_msg to the kernel from the page, as a tampered front end would."""
    header = {"msg_id": uuid.uuid4().hex, "username": "", "session": session,
              "date": datetime.now(timezone.utc).isoformat(), "msg_type": "comm_msg", "version": "5.3"}
    msg = {"header": header, "parent_header": {}, "metadata": {},
           "content": {"comm_id": comm_id, "data": data}}
    frame = serialize_msg_to_ws_v1(msg, "shell", pack=lambda o: json.dumps(o).encode())
    page.evaluate("bytes => { for (const s of window.__sopcoachSockets) { if (s.readyState === 1) "
                  "s.send(new Uint8Array(bytes)); } }", list(frame))


def click_data() -> dict:
    return {"method": "custom", "content": {"event": "click"}}


def update_data(**state) -> dict:
    return {"method": "update", "state": state, "buffer_paths": []}
