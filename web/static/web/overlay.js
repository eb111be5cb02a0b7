// Overlay of several runs: one chart per logged epoch metric, one line per run (the same colour
// on every chart), a shared legend that hides or shows a run everywhere, zoom on the epoch axis
// shared by all charts. A run that logs an epoch (the list's WebSocket push) is fetched again,
// at most once per 2 s per run; nothing polls.
(function () {
  "use strict";
  var NNT = window.NNT;
  var box = document.getElementById("overlay-charts");
  if (!NNT || !box || !window.Plotly) { return; }
  var runs = JSON.parse(document.getElementById("overlay-runs").textContent);
  var MAX_POINTS = 1000, REFETCH_MS = 2000;
  var FIRST = ["loss", "val_loss", "accuracy", "val_accuracy"];
  var LAST = { lr: 1, learning_rate: 1, epoch_time_s: 1, samples_per_s: 1 };
  var byId = {}, series = {}, charts = {}, hidden = {}, syncing = false;
  window.nntOverlay = { fetched: 0, drawn: 0 };
  runs.forEach(function (run, i) { run.index = i; byId[run.id] = run; });

  function color(i) {   // the palette first, then well-spread hues for any number of runs
    return i < NNT.COLORS.length ? NNT.COLORS[i] : "hsl(" + Math.round((i * 137.508) % 360) + ", 62%, 44%)";
  }

  // ---- legend: one button per run, hiding or showing its line on every chart ------------------
  var legend = document.getElementById("overlay-legend");
  function badge(run) { return '<span class="badge status-' + run.status + '">' + run.status + "</span>"; }
  function buildLegend() {
    legend.textContent = "";
    runs.forEach(function (run) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.setAttribute("aria-pressed", hidden[run.id] ? "false" : "true");
      b.setAttribute("data-run", run.id); b.title = run.name + " — click to hide or show";
      var sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color(run.index);
      var label = document.createElement("span"); label.className = "run-label"; label.textContent = run.name;
      b.appendChild(sw); b.appendChild(label);
      b.insertAdjacentHTML("beforeend", badge(run));
      b.addEventListener("click", function () { hidden[run.id] = !hidden[run.id]; buildLegend(); drawAll(); });
      var open = document.createElement("a");
      open.href = "/simulations/" + run.id + "/"; open.textContent = "↗"; open.title = "Open " + run.name; open.className = "muted";
      li.appendChild(b); li.appendChild(open);
      legend.appendChild(li);
    });
  }

  // ---- data ------------------------------------------------------------------------------------
  function load(run) {
    return NNT.api("GET", "/api/simulations/" + run.id + "/metrics?max_points=" + MAX_POINTS).then(function (m) {
      series[run.id] = m || {}; window.nntOverlay.fetched += 1;
    }).catch(function (err) { run.error = err.message; series[run.id] = series[run.id] || {}; });
  }
  function base(name) { return name.indexOf("val_") === 0 ? name.slice(4) : name; }
  function metricNames() {
    var seen = {};
    runs.forEach(function (run) { Object.keys(series[run.id] || {}).forEach(function (n) { seen[n] = 1; }); });
    var names = Object.keys(seen);
    function rank(n) { var f = FIRST.indexOf(n); return f !== -1 ? f : LAST[n] ? 9 : 5; }
    return names.sort(function (a, b) {
      return rank(a) - rank(b) || base(a).localeCompare(base(b)) || a.localeCompare(b);
    });
  }

  // ---- charts ------------------------------------------------------------------------------------
  function traces(name) {   // every run, even one without this metric: trace i is run i
    return runs.map(function (run) {
      var s = (series[run.id] || {})[name] || { epochs: [], values: [] }, xs = [], ys = [];
      for (var i = 0; i < s.epochs.length; i++) {
        if (s.values[i] === null || s.values[i] === undefined) { continue; }
        xs.push(s.epochs[i]); ys.push(s.values[i]);
      }
      return { type: "scatter", mode: xs.length < 25 ? "lines+markers" : "lines", name: run.name, x: xs, y: ys,
               line: { color: color(run.index), width: 1.8 }, marker: { size: 4, color: color(run.index) },
               visible: hidden[run.id] ? false : true,
               hovertemplate: "%{y:.4g}<extra>" + run.name.replace(/</g, "&lt;").slice(0, 60) + "</extra>" };
    });
  }
  function layout(name) {
    return NNT.layout({ height: 300, showlegend: false, margin: { l: 56, r: 12, t: 8, b: 40 },
                        hovermode: runs.length > 12 ? "closest" : "x unified",
                        xaxis: { title: { text: "epoch" }, gridcolor: "#e2e8f0", zeroline: false },
                        yaxis: { title: { text: name }, gridcolor: "#e2e8f0", zeroline: false, automargin: true } });
  }
  function chart(name) {
    if (charts[name]) { return charts[name]; }
    var fig = document.createElement("figure"), h = document.createElement("h3"), el = document.createElement("div");
    fig.className = "overlay-figure"; fig.style.margin = "0";
    h.textContent = NNT.label(name) + (NNT.label(name).toLowerCase() === name.replace(/_/g, " ") ? "" : " (" + name + ")");
    el.className = "chart overlay-chart"; el.setAttribute("data-metric", name); el.id = "overlay-" + name.replace(/[^\w-]/g, "_");
    fig.appendChild(h); fig.appendChild(el); box.appendChild(fig);
    charts[name] = el;
    return el;
  }
  function share(src) {   // zooming one chart's epochs zooms them all
    src.on("plotly_relayout", function (ev) {
      if (syncing) { return; }
      var upd = null;
      if (ev["xaxis.range[0]"] !== undefined) { upd = { "xaxis.range": [ev["xaxis.range[0]"], ev["xaxis.range[1]"]] }; }
      else if (ev["xaxis.autorange"]) { upd = { "xaxis.autorange": true }; }
      if (!upd) { return; }
      syncing = true;
      Promise.all(Object.keys(charts).filter(function (n) { return charts[n] !== src; })
        .map(function (n) { return Plotly.relayout(charts[n], upd); }))
        .then(function () { syncing = false; }, function () { syncing = false; });
    });
  }
  function drawAll() {
    var names = metricNames(), status = document.getElementById("overlay-status");
    names.forEach(function (name) {
      var el = chart(name), fresh = !el._fullLayout, lay = layout(name);
      if (!fresh && el.layout && el.layout.xaxis && !el.layout.xaxis.autorange) { lay.xaxis.range = el.layout.xaxis.range; }   // keep a zoom
      NNT.plot(el, traces(name), lay);
      if (fresh && el.on) { share(el); }
    });
    window.nntOverlay.drawn += 1;
    var failed = runs.filter(function (r) { return r.error; });
    status.textContent = names.length
      ? names.length + " metric" + (names.length === 1 ? "" : "s") + " · " + runs.length + " run" + (runs.length === 1 ? "" : "s") +
        (failed.length ? " · could not load " + failed.map(function (r) { return r.name + " (" + r.error + ")"; }).join(", ") : "")
      : "No epoch was logged by these runs yet: the charts appear with the first logged epoch.";
  }

  // ---- live: refetch a run when it logs an epoch or changes status -------------------------------
  var due = {};
  function refetch(run) {
    if (due[run.id]) { return; }
    due[run.id] = setTimeout(function () {
      load(run).then(function () { delete due[run.id]; drawAll(); });
    }, REFETCH_MS);
  }
  NNT.socket.on("status", function (msg) {
    var run = byId[msg.simulation_id], st = (msg && msg.status) || {};
    if (!run) { return; }
    if (st.status === "deleted") {   // gone: off the legend and every chart at once
      runs = runs.filter(function (r) { return r !== run; }); delete byId[run.id]; delete series[run.id];
      var left = metricNames();
      Object.keys(charts).forEach(function (n) {
        if (left.indexOf(n) === -1) { Plotly.purge(charts[n]); charts[n].parentNode.remove(); delete charts[n]; }
      });
      buildLegend(); drawAll(); return;
    }
    var changed = st.status && st.status !== run.status;
    if (changed) { run.status = st.status; buildLegend(); }
    if (changed || (st.epoch && st.epoch > run.epoch)) { run.epoch = st.epoch || run.epoch; refetch(run); }
  });
  var conn = document.getElementById("live-conn");
  NNT.socket.connect("/ws/simulations/", function (state) {
    conn.className = "conn " + (state === "on" ? "on" : "off");
    conn.textContent = state === "on" ? "live" : state === "refused" ? "not allowed" : "reconnecting…";
  });

  buildLegend();
  Promise.all(runs.map(load)).then(drawAll);
})();
