// Shared helpers of the simulation pages: API calls, confirmation, one WebSocket, tabs, chart style.
(function () {
  "use strict";
  var NNT = window.NNT = window.NNT || {};
  NNT.COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                "#4f46e5", "#ea580c"];
  NNT.FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#334155" };
  NNT.PLOT_CONFIG = { responsive: true, displaylogo: false,
                      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  NNT.layout = function (extra) {
    var base = {
      margin: { l: 52, r: 12, t: 8, b: 40 }, height: 280, hovermode: "x unified",
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: NNT.FONT,
      xaxis: { title: { text: "epoch" }, gridcolor: "#e2e8f0", zeroline: false },
      yaxis: { gridcolor: "#e2e8f0", zeroline: false, automargin: true },
      legend: { orientation: "h", y: -0.22, font: { size: 11 } }, showlegend: true,
    };
    Object.keys(extra || {}).forEach(function (k) { base[k] = extra[k]; });
    return base;
  };

  // Plotly.react, with its asynchronous failures reported instead of silently leaving a blank chart.
  NNT.plot = function (el, traces, layout) {
    if (!el._fullLayout) { el.innerHTML = ""; }   // a placeholder, not a plot: clear it first
    var done = Plotly.react(el, traces, layout, NNT.PLOT_CONFIG);
    if (done && done.catch) {
      done.catch(function (err) {
        console.error("chart " + el.id + " failed:", err);
        NNT.empty(el, "This chart could not be drawn: " + (err && err.message ? err.message : err));
      });
    }
    return done;
  };

  NNT.csrf = function () {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  };

  // fetch JSON from the API with the session; rejects with the API's own message.
  NNT.api = function (method, url, body) {
    var opts = { method: method, credentials: "same-origin",
                 headers: { "X-CSRFToken": NNT.csrf(), "Accept": "application/json" } };
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!resp.ok) {
          var msg = (data && (data.detail || data.message)) || ("HTTP " + resp.status);
          if (data && data.errors) { msg += ": " + Object.keys(data.errors).map(function (k) { return data.errors[k]; }).join("; "); }
          var err = new Error(typeof msg === "string" ? msg : JSON.stringify(msg)); err.status = resp.status; throw err;
        }
        return data;
      });
    });
  };

  // Which action each status allows: schemas/lifecycle.py, put in every page by the base
  // template (json_script "nnt-lifecycle"), so no page keeps a copy of its own.
  NNT.lifecycle = (function () {
    var el = document.getElementById("nnt-lifecycle");
    var rules = el ? JSON.parse(el.textContent) : {};
    return {
      rules: rules,
      allowed: function (action, status) { var ok = rules[action]; return !!ok && ok.indexOf(status) !== -1; },
    };
  })();

  NNT.confirm = function (title, text, okLabel) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || !dialog.showModal) { return Promise.resolve(window.confirm(title + "\n" + text)); }
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel || "Delete";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok");
      });
      dialog.returnValue = "";
      dialog.showModal();
    });
  };

  // One WebSocket per page; listeners by message kind; subscriptions replayed on reconnect.
  NNT.socket = (function () {
    var listeners = {}, subs = [], ws = null, delay = 1000, path = null, stateFn = null, sinceFn = null;
    function emit(kind, msg) { (listeners[kind] || []).forEach(function (fn) { fn(msg); }); }
    function open() {
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      var since = sinceFn ? sinceFn() : null;   // the server first sends what the page missed
      ws = new WebSocket(proto + location.host + path + (since === null ? "" : "?since=" + since));
      ws.onopen = function () {
        delay = 1000; if (stateFn) { stateFn("on"); }
        subs.forEach(function (s) { ws.send(JSON.stringify({ subscribe: s })); });
      };
      ws.onmessage = function (ev) {
        var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
        emit("*", msg); emit(msg.kind, msg);
      };
      ws.onclose = function (ev) {
        if (ev.code === 4403) { if (stateFn) { stateFn("refused"); } return; }
        if (stateFn) { stateFn("off"); }
        setTimeout(open, delay);   // reconnect the socket; data only ever arrives by push
        delay = Math.min(delay * 2, 30000);
      };
    }
    return {
      connect: function (p, onState, since) { path = p; stateFn = onState; sinceFn = since || null; open(); },
      on: function (kind, fn) { (listeners[kind] = listeners[kind] || []).push(fn); },
      subscribe: function (what) {
        var key = JSON.stringify(what);
        if (subs.some(function (s) { return JSON.stringify(s) === key; })) { return; }
        subs.push(what);
        if (ws && ws.readyState === 1) { ws.send(JSON.stringify({ subscribe: what })); }
      },
    };
  })();

  // Tabs: the panel is rendered the first time it is shown (lazy), charts resized on every show.
  NNT.tabs = (function () {
    var handlers = {}, seen = {};
    function show(name, push) {
      var tab = document.querySelector('[role=tab][data-tab="' + name + '"]');
      if (!tab) { return; }
      document.querySelectorAll("[role=tab]").forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        document.getElementById(t.getAttribute("aria-controls")).classList.toggle("hidden", !on);
      });
      if (push) { history.replaceState(null, "", "#" + name); }
      (handlers[name] || []).forEach(function (fn) { fn(!seen[name]); });
      seen[name] = true;
      document.querySelectorAll("#panel-" + name + " .js-plotly-plot").forEach(function (el) {
        if (window.Plotly) { Plotly.Plots.resize(el); }
      });
    }
    document.addEventListener("DOMContentLoaded", function () {
      document.querySelectorAll("[role=tab]").forEach(function (t) {
        t.addEventListener("click", function () { show(t.getAttribute("data-tab"), true); });
      });
      function fromHash() {
        var wanted = (location.hash || "").slice(1);
        show(document.querySelector('[role=tab][data-tab="' + wanted + '"]') ? wanted : "general", false);
      }
      fromHash();
      window.addEventListener("hashchange", fromHash);
    });
    return {
      on: function (name, fn) { (handlers[name] = handlers[name] || []).push(fn); },
      visible: function (name) { var p = document.getElementById("panel-" + name); return p && !p.classList.contains("hidden"); },
      show: show,
    };
  })();

  NNT.debounce = function (fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  };

  NNT.label = function (name) {
    var text = name.replace(/^val_/, "").replace(/_/g, " ");
    if (name.indexOf("val_") === 0) { text = "validation " + text; }
    return text.charAt(0).toUpperCase() + text.slice(1);
  };

  // A status message as one line (older failed rows kept whole tracebacks): its first line, capped.
  NNT.headline = function (text) {
    var line = String(text || "").split("\n").map(function (l) { return l.trim(); }).filter(Boolean)[0] || "";
    return line.length <= 300 ? line : line.slice(0, 299) + "…";
  };

  NNT.fmt = function (v) {
    if (v === null || v === undefined || !isFinite(v)) { return "–"; }
    if (Number.isInteger(v)) { return String(v); }
    var s = Number(v).toPrecision(4);
    if (s.indexOf("e") === -1 && s.indexOf(".") !== -1) { s = s.replace(/0+$/, "").replace(/\.$/, ""); }
    return s;
  };

  // Never wipe a live plot's DOM by hand: Plotly would keep diffing against what is gone.
  NNT.clear = function (el) {
    if (el._fullLayout && window.Plotly) { Plotly.purge(el); }
    el.innerHTML = "";
  };

  NNT.empty = function (el, text) {
    NNT.clear(el);
    var p = document.createElement("p");
    p.className = "chart-placeholder muted";
    p.textContent = text;
    el.appendChild(p);
  };
})();
