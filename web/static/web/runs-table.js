// The runs table's columns: the chooser (remembered in localStorage), the filter row (Enter
// applies a column's filter as the API's `filter=` parameter), and filling a row's cells from
// one `/api/simulations` item exactly as the server renders them (web/simulations/table.py).
(function () {
  "use strict";
  var NNT = window.NNT;
  var table = document.getElementById("simulations");
  if (!NNT || !table) { return; }
  var KEY = "nnt.runs.columns";
  var HEALTH = { healthy: "healthy", warning: "warning", failing: "failing", unknown: "–" };
  var HEALTH_TITLE = { healthy: "no health flag on the latest recorded tensors",
                       failing: "the run failed, or a metric or tensor is not finite",
                       unknown: "nothing recorded yet" };

  // ---- cell text, as table.py writes it ------------------------------------------------------
  function fmt(v) {
    if (v === null || v === undefined || v === "") { return "–"; }
    if (typeof v !== "number") { return String(v); }
    if (!isFinite(v)) { return "–"; }
    if (Number.isInteger(v) && Math.abs(v) < 1e15) { return String(v); }
    var r = Number(v.toPrecision(4)), e = r === 0 ? 0 : Math.floor(Math.log10(Math.abs(r)));
    if (e < -4 || e >= 4) {   // Python's "%.4g": 1.5e-05
      return r.toExponential(3).replace(/\.?0+e/, "e").replace(/e([+-])(\d)$/, "e$10$2");
    }
    return String(r);
  }
  function duration(s) {
    if (s === null || s === undefined || !isFinite(s) || s < 0) { return "–"; }
    s = Math.floor(s);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m " + two(s % 60) + "s"; }
    if (s < 172800) { return Math.floor(s / 3600) + "h " + two(Math.floor(s % 3600 / 60)) + "m"; }
    return Math.floor(s / 86400) + "d " + two(Math.floor(s % 86400 / 3600)) + "h";
  }
  function stamp(iso) {   // as the server renders it: UTC, "Y-m-d H:i"
    var d = new Date(iso); if (!iso || isNaN(d)) { return ""; }
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) + " " + two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
  }

  // ---- filling a row -------------------------------------------------------------------------
  var me = table.getAttribute("data-user");
  function describe(row, sim) {   // name, owner and tags: what a `simulation` push carries
    if (typeof sim.name === "string") {
      var link = row.querySelector('[data-role="name"]'), id = sim.id || row.getAttribute("data-simulation-id");
      link.textContent = sim.name || id; link.title = link.textContent;
      row.querySelector(".row-check").setAttribute("aria-label", "Select " + link.textContent);
    }
    var owner = row.querySelector('[data-role="owner"]');
    if (owner && typeof sim.owner === "string") {
      owner.textContent = sim.owner || "no owner";
      owner.classList.toggle("muted", sim.owner === me);
    }
    var cell = row.querySelector('[data-role="tags"]');
    if (cell && Array.isArray(sim.tags)) {
      cell.textContent = "";
      sim.tags.forEach(function (t) {
        var a = document.createElement("a");
        a.className = "tag"; a.href = "?tag=" + encodeURIComponent(t); a.textContent = t;
        cell.appendChild(a);
      });
      if (!sim.tags.length) { var none = document.createElement("span"); none.className = "muted"; none.textContent = "—"; cell.appendChild(none); }
    }
  }
  function metricCell(td, item, key) {
    var rest = key.slice("metric.".length), dot = rest.lastIndexOf(".");
    var s = (item.metrics || {})[rest.slice(0, dot)] || {}, which = rest.slice(dot + 1);
    td.textContent = fmt(s[which]);
    var title = "";
    if (which === "best" && s.best_epoch !== undefined && s.best_epoch !== null) { title = "best at epoch " + s.best_epoch + " (goal: " + (s.goal || "?") + ")"; }
    if (which === "last" && s.epoch !== undefined && s.epoch !== null) { title = "at epoch " + s.epoch; }
    if (title) { td.title = title; } else { td.removeAttribute("title"); }
  }
  // The chip's tooltip names the run's active diagnoses; the cell's, its tensor flags.
  function healthCell(td, item) {
    var h = item.health || {}, verdict = h.verdict || "unknown";
    var chip = td.querySelector('[data-role="health"]');
    chip.className = "health-chip health-" + verdict;
    chip.textContent = HEALTH[verdict] || verdict;
    var titles = (h.diagnoses || []).map(function (d) { return d.title || d.problem; }).join("; ");
    if (titles) { chip.title = titles; } else { chip.removeAttribute("title"); }
    chip.setAttribute("data-diagnoses", (h.diagnoses || []).map(function (d) { return d.problem; }).join(" "));
    var flags = (h.flags || []).map(function (f) { return f.replace(/_/g, " "); }).join(", ");
    td.title = flags || HEALTH_TITLE[verdict] || "";
  }
  // Every cell a full API item describes; status and progress are list.js's `update`.
  function fill(row, item) {
    describe(row, item);
    if (item.epoch !== undefined) { row.setAttribute("data-epoch", String(item.epoch || 0)); }
    row.querySelectorAll("td[data-col]").forEach(function (td) {
      var key = td.getAttribute("data-col");
      if (key.indexOf("hp.") === 0) { td.textContent = fmt((item.hparams || {})[key.slice(3)]); }
      else if (key.indexOf("metric.") === 0) { metricCell(td, item, key); }
      else if (key === "health") { healthCell(td, item); }
      else if (key === "duration") { td.textContent = duration(item.duration_s); }
      else if (key === "created" && item.created_at) {
        var c = td.querySelector('[data-role="created"]'); c.textContent = stamp(item.created_at); c.title = item.created_at;
      }
    });
  }

  // ---- column chooser --------------------------------------------------------------------------
  var defaults = {};
  table.querySelectorAll("thead th[data-col]").forEach(function (th) {
    defaults[th.getAttribute("data-col")] = !th.classList.contains("col-off");
  });
  function prefs() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function shown(key) { var p = prefs(); return p[key] === undefined ? defaults[key] : p[key]; }
  function apply(scope) {
    var vis = {};
    Object.keys(defaults).forEach(function (k) { vis[k] = shown(k); });
    (scope || table).querySelectorAll("[data-col]").forEach(function (el) {
      var k = el.getAttribute("data-col");
      if (vis[k] !== undefined) { el.classList.toggle("col-off", !vis[k]); }
    });
    if (!scope) {
      document.querySelectorAll("[data-col-toggle]").forEach(function (box) { box.checked = vis[box.getAttribute("data-col-toggle")] !== false; });
    }
  }
  function choose(key, on) {
    var p = prefs();
    if (on === defaults[key]) { delete p[key]; } else { p[key] = on; }   // defaults may change later
    try { localStorage.setItem(KEY, JSON.stringify(p)); } catch (e) { /* private mode: this page only */ }
    apply();
  }
  document.querySelectorAll("[data-col-toggle]").forEach(function (box) {
    box.addEventListener("change", function () { choose(box.getAttribute("data-col-toggle"), box.checked); });
  });
  var reset = document.getElementById("columns-reset");
  if (reset) { reset.addEventListener("click", function () { try { localStorage.removeItem(KEY); } catch (e) { /* ignore */ } apply(); }); }
  document.addEventListener("click", function (ev) {   // the menu closes on a click elsewhere
    var menu = document.getElementById("column-menu");
    if (menu && menu.open && !menu.contains(ev.target)) { menu.open = false; }
  });
  apply();

  // ---- filter row: "Adam", "= Adam", ">= 0.9", "< 1e-3" -> filter=<column>:<op>:<value> ------
  var OPS = { ">=": "ge", "≥": "ge", "<=": "le", "≤": "le", "!=": "ne", "≠": "ne", "=": "eq", ">": "gt", "<": "lt" };
  function parse(input) {
    var text = input.value.trim(), numeric = input.getAttribute("data-numeric") === "1";
    var key = input.getAttribute("data-filter-col");
    if (!text) { return { spec: null }; }
    var m = /^(>=|<=|!=|≥|≤|≠|=|>|<)\s*(.*)$/.exec(text), op, value;
    if (m) { op = OPS[m[1]]; value = m[2].trim(); } else { value = text; op = numeric || key === "status" || key === "health" ? "eq" : "contains"; }
    if (!value) { return { error: "type a value after " + m[1] }; }
    if (numeric && !isFinite(Number(value))) { return { error: "a number, e.g. >= 0.9" }; }
    return { spec: key + ":" + op + ":" + value };
  }
  table.querySelectorAll(".col-filter").forEach(function (input) {
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { input.value = input.defaultValue; input.classList.remove("invalid"); return; }
      if (ev.key !== "Enter") { return; }
      ev.preventDefault();
      var got = parse(input), key = input.getAttribute("data-filter-col");
      if (!input.hasAttribute("data-help")) { input.setAttribute("data-help", input.title); }
      input.classList.toggle("invalid", !!got.error);
      input.title = got.error || input.getAttribute("data-help");
      if (got.error) { return; }
      var params = new URLSearchParams(location.search), keep = params.getAll("filter").filter(function (f) {
        return f.slice(0, key.length + 1) !== key + ":";
      });
      params.delete("filter"); params.delete("page");
      keep.forEach(function (f) { params.append("filter", f); });
      if (got.spec) { params.append("filter", got.spec); }
      location.search = params.toString();
    });
  });

  NNT.runs = { health: healthCell, fill: fill, describe: describe, apply: apply, fmt: fmt, duration: duration, stamp: stamp };
})();
