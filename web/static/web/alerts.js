// Diagnosis alerts on every page of NN Tracker (the base template loads this for signed-in
// users, with their level in data-level: off | fatal | all). While the level is not off, one
// WebSocket (/ws/alerts/) brings each new diagnosis of the user's runs that the level lets
// through (web/live/alerts.py); each shows as a toast, and as a desktop notification when the
// browser allows it (asked when the user subscribes: Account > Alerts or "Notify me").
// No dependency: pages without simulations.js load it too.
(function () {
  "use strict";
  var script = document.currentScript;
  var level = (script && script.getAttribute("data-level")) || "off";
  var ws = null, delay = 1000, timer = null, box = null;
  window.nntAlerts = { shown: 0, connected: false };

  function container() {
    if (box) { return box; }
    box = document.createElement("div");
    box.id = "toasts"; box.className = "toasts";
    box.setAttribute("aria-live", "polite"); box.setAttribute("role", "status");
    document.body.appendChild(box);
    return box;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function toast(msg, d) {
    var fatal = d.severity === "fatal", t = el("div", "toast toast-" + (fatal ? "fatal" : "warning"));
    t.setAttribute("data-problem", d.problem); t.setAttribute("data-simulation-id", msg.simulation_id);
    var head = el("p", "toast-head");
    head.appendChild(el("b", "toast-title", d.title || d.problem));
    head.appendChild(document.createTextNode(" in "));
    var link = el("a", "toast-run", msg.name || msg.simulation_id);
    link.href = "/simulations/" + encodeURIComponent(msg.simulation_id) + "/";
    head.appendChild(link);
    var close = el("button", "toast-close", "×");
    close.type = "button"; close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () { t.remove(); });
    head.appendChild(close);
    t.appendChild(head);
    t.appendChild(el("p", "toast-summary", d.summary || ""));
    if (d.fix) { t.appendChild(el("p", "toast-fix", "Try: " + d.fix)); }
    var list = container();
    list.insertBefore(t, list.firstChild);
    while (list.children.length > 5) { list.removeChild(list.lastChild); }   // the newest five
    window.nntAlerts.shown += 1;
  }
  function desktop(msg, d) {
    if (!window.Notification || Notification.permission !== "granted") { return; }
    try {
      // one tag per run and problem: several open tabs make one notification, not several
      var n = new Notification((d.title || d.problem) + " · " + (msg.name || msg.simulation_id),
                               { body: (d.summary || "") + (d.fix ? "\nTry: " + d.fix : ""), tag: "nnt-" + msg.simulation_id + "-" + d.problem });
      n.onclick = function () { window.focus(); window.location.href = "/simulations/" + msg.simulation_id + "/"; };
    } catch (e) { /* some browsers allow notifications from a service worker only */ }
  }
  function open() {
    timer = null;
    if (level === "off" || ws) { return; }
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var sock = ws = new WebSocket(proto + location.host + "/ws/alerts/");
    sock.onopen = function () { delay = 1000; window.nntAlerts.connected = true; };
    sock.onmessage = function (ev) {
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.kind !== "alert") { return; }
      (msg.diagnoses || []).forEach(function (d) { toast(msg, d); desktop(msg, d); });
    };
    sock.onclose = function (ev) {
      window.nntAlerts.connected = false;
      if (ws === sock) { ws = null; }
      if (ev.code === 4403 || level === "off") { return; }   // signed out, or switched off
      timer = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  function set(next) {
    level = next || "off";
    if (level === "off") {
      if (timer) { clearTimeout(timer); timer = null; }
      if (ws) { ws.close(); ws = null; }
      return;
    }
    open();
  }
  window.NNTAlerts = { set: set, level: function () { return level; } };

  // The settings page: the browser's permission is asked on the click that subscribes.
  document.addEventListener("change", function (ev) {
    var input = ev.target;
    if (!input || input.name !== "diagnoses" || !input.closest || !input.closest("#alert-form")) { return; }
    if (input.value !== "off" && window.Notification && Notification.permission === "default") { Notification.requestPermission(); }
  });
  set(level);
})();
