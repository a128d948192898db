// sopcoach.ui.download_button: one click asks the kernel for a file and saves what it sends back.
// Every text shown comes from the kernel, in the page's language.

function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "jupyter-button widget-button sopcoach-download";
  button.style.width = "auto";  // (a jupyter-button is 148 px wide: the whole label shows)
  const icon = document.createElement("i");
  const label = document.createElement("span");
  button.append(icon, label);
  el.append(button);
  let busy = false;

  const show = () => {
    icon.className = `fa fa-${busy ? "spinner fa-spin" : model.get("icon")}`;
    label.textContent = " " + (busy ? model.get("busy_text") : model.get("description"));
    button.disabled = busy || model.get("disabled");
    button.setAttribute("aria-busy", busy ? "true" : "false");
  };
  const save = (name, mime, view) => {
    const url = URL.createObjectURL(new Blob([view], { type: mime }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.style.display = "none";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);  // (the browser has begun saving by then)
  };

  button.addEventListener("click", () => {
    if (busy || model.get("disabled")) return;
    busy = true;
    show();
    model.send({ type: "want" });
  });
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "file" && buffers && buffers.length) save(msg.name, msg.mime, buffers[0]);
    busy = false;
    show();
  });
  model.on("change:description", show);
  model.on("change:disabled", show);
  model.on("change:icon", show);
  show();
}

export default { render };
