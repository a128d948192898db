// The learner page's router: keeps the address in step with the view the kernel shows, turns
// in-app links into view switches (no new page, no new kernel), and watches the connection.
const BANNER_AFTER_MS = 20000;   // no answer from the kernel this long: the connection is lost
const PING_EVERY_MS = 5000;

const TEXT = {
  "zh-CN": {
    lost: "与服务器的连接已断开。已显示“已保存”的答案都已安全保存。",
    how: "如果您在另一个窗口或标签页打开了学习中心，本页已停用，请在那里继续；否则请检查网络，然后重新加载本页继续学习（会回到当前页面，考试会从上次保存处继续）。",
    reload: "重新加载",
  },
  "en": {
    lost: "The connection to the server is lost. Every answer shown as “Saved” is safely stored.",
    how: "If you opened the learning centre in another window or tab, this page has stopped: continue there. Otherwise check your network, then reload this page to continue (you come back to this view; an exam resumes where it was saved).",
    reload: "Reload",
  },
};

function current(base) {
  const url = new URL(window.location.href);
  let path = url.pathname.startsWith(base) ? url.pathname.slice(base.length) : "";
  path = path.replace(/^\/+|\/+$/g, "");
  return { path, lang: url.searchParams.get("lang") || "" };
}

function banner(lang) {
  let el = document.getElementById("sopcoach-connection-lost");
  if (el) return el;
  const t = TEXT[lang] || TEXT["zh-CN"];
  el = document.createElement("div");
  el.id = "sopcoach-connection-lost";
  el.setAttribute("role", "alert");
  el.className = "sopcoach-connection-lost";
  const p1 = document.createElement("p");
  p1.innerHTML = "<b></b>";
  p1.firstChild.textContent = t.lost;
  const p2 = document.createElement("p");
  p2.textContent = t.how;
  const b = document.createElement("button");
  b.textContent = t.reload;
  b.addEventListener("click", () => window.location.reload());
  el.append(p1, p2, b);
  el.style.display = "none";
  document.body.appendChild(el);
  return el;
}

function render({ model, el }) {
  if (window.__sopcoachRouter) return;   // one router per page
  window.__sopcoachRouter = true;
  el.classList.add("sopcoach-router");
  const base = model.get("base");
  let lastPong = Date.now();
  let lost = false;

  const report = (kind) => model.send({ type: "navigate", kind, ...current(base) });

  model.on("msg:custom", (msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "pong") {
      lastPong = Date.now();
      if (lost) {
        lost = false;
        banner(model.get("lang")).style.display = "none";
        document.body.classList.remove("sopcoach-offline");
      }
    } else if (msg.type === "address") {
      const url = base + (msg.path || "") + (msg.lang ? "?lang=" + encodeURIComponent(msg.lang) : "");
      if (url !== window.location.pathname + window.location.search) {
        if (msg.push) window.history.pushState({ sopcoach: true }, "", url);
        else window.history.replaceState({ sopcoach: true }, "", url);
      }
      if (msg.title) document.title = msg.title;
      if (msg.push) window.scrollTo(0, 0);
    }
  });

  window.addEventListener("popstate", () => report("history"));
  document.addEventListener("click", (event) => {
    const a = event.target && event.target.closest ? event.target.closest("a[data-view]") : null;
    if (!a || event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (lost) return;
    window.history.pushState({ sopcoach: true }, "", a.getAttribute("href"));
    window.scrollTo(0, 0);
    report("link");
  });

  setInterval(() => {
    try { model.send({ type: "ping" }); } catch (e) { /* the banner below tells */ }
    if (!lost && Date.now() - lastPong > BANNER_AFTER_MS) {
      lost = true;
      banner(model.get("lang")).style.display = "block";
      document.body.classList.add("sopcoach-offline");
    }
  }, PING_EVERY_MS);

  report("load");
}

export default { render };
