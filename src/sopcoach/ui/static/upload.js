// The review app's upload control (sopcoach.ui.chunked_upload): sends each chosen file to the kernel in
// slices, one at a time, and shows per file what the kernel has received (name, bar, %, MB).
// Every text shown comes from the kernel, in the page's language.
const ACK_TIMEOUT_MS = 120000;   // no answer for a slice this long: the connection is lost

const mb = (n) => (n / 1e6).toLocaleString(undefined, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
// "received / size" in MB, or in KB for a file under 0.1 MB (which would read 0.0 / 0.0 MB)
const kb = (n) => Math.max(1, Math.round(n / 1e3)).toLocaleString();
const amounts = (received, size) => size >= 1e5 ? `${mb(received)} / ${mb(size)} MB`
  : `${received >= size ? kb(size) : Math.round(received / 1e3).toLocaleString()} / ${kb(size)} KB`;

function render({ model, el }) {
  el.classList.add("sopcoach-upload");
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.className = "sopcoach-upload-input";
  const choose = document.createElement("button");
  choose.className = "sopcoach-upload-choose jupyter-button";
  const cancel = document.createElement("button");
  cancel.className = "sopcoach-upload-cancel jupyter-button";
  cancel.style.display = "none";
  const rows = document.createElement("div");
  rows.className = "sopcoach-upload-files";
  const note = document.createElement("div");
  note.className = "sopcoach-upload-message";
  note.setAttribute("role", "status");
  const bar = document.createElement("div");
  bar.className = "sopcoach-upload-bar";
  bar.append(choose, input, cancel);
  el.append(bar, rows, note);

  let batch = null;            // the upload this page is sending
  let waiting = null;          // the answer awaited: {resolve, reject, timer}

  const texts = () => model.get("texts") || {};
  const answer = (value, error) => {
    if (!waiting) return;
    clearTimeout(waiting.timer);
    const w = waiting;
    waiting = null;
    error ? w.reject(error) : w.resolve(value);
  };
  const expect = () => new Promise((resolve, reject) => {
    waiting = { resolve, reject, timer: setTimeout(() => answer(null, new Error("lost")), ACK_TIMEOUT_MS) };
  });

  function show() {
    const t = texts();
    choose.textContent = t.choose || "Upload";
    cancel.textContent = t.cancel || "Stop";
    input.accept = model.get("accept");
    choose.disabled = model.get("disabled");
    rows.replaceChildren(...(model.get("files") || []).map((f) => {
      const row = document.createElement("div");
      row.className = `sopcoach-upload-file sopcoach-upload-${f.state}`;
      const name = document.createElement("span");
      name.className = "sopcoach-upload-name";
      name.textContent = f.name;
      const progress = document.createElement("progress");
      progress.max = Math.max(f.size, 1);
      progress.value = f.size ? f.received : 1;
      const pct = f.size ? Math.floor((100 * f.received) / f.size) : 100;
      const figures = document.createElement("span");
      figures.className = "sopcoach-upload-figures";
      figures.textContent = `${pct}% · ${amounts(f.received, f.size)}`;
      row.append(name, progress, figures);
      return row;
    }));
    note.textContent = model.get("message");
    note.className = `sopcoach-upload-message sopcoach-msg-${model.get("level")}`;
  }

  async function send(files, id) {
    const chunk = model.get("chunk_bytes");
    for (let index = 0; index < files.length; index++) {
      const file = files[index];
      for (let offset = 0; offset < file.size; offset += chunk) {
        const slice = await file.slice(offset, Math.min(offset + chunk, file.size)).arrayBuffer();
        if (batch !== id) return;
        const reply = expect();
        model.send({ type: "chunk", batch: id, index, offset }, undefined, [slice]);
        const got = await reply;
        if (batch !== id || got.type !== "ack") return;
      }
    }
  }

  async function start(files) {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    answer(null, new Error("replaced"));
    batch = id;
    const reply = expect();
    model.send({ type: "begin", batch: id, files: files.map((f) => ({ name: f.name, size: f.size })) });
    try {
      const got = await reply;
      if (got.type !== "go") return;
      cancel.style.display = "";
      await send(files, id);
    } catch (e) {
      if (e.message === "lost" && batch === id) {
        note.textContent = texts().lost || "";
        note.className = "sopcoach-upload-message sopcoach-msg-warning";
      }
    } finally {
      if (batch === id) {
        batch = null;
        cancel.style.display = "none";
      }
    }
  }

  model.on("msg:custom", (msg) => {
    if (!msg || typeof msg !== "object" || msg.batch !== batch) {
      if (msg && msg.type === "refused") answer(msg);
      return;
    }
    if (msg.type === "go" || msg.type === "ack" || msg.type === "stopped" || msg.type === "done") answer(msg);
  });
  choose.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) start(files);
  });
  cancel.addEventListener("click", () => {
    if (batch) model.send({ type: "cancel", batch });
  });
  for (const name of ["files", "message", "level", "texts", "disabled", "accept"]) model.on(`change:${name}`, show);
  show();
}

export default { render };
