// Resources panel of a run's page: CPU %, memory and (when sampled) GPU use over time, from
// GET /api/simulations/{id}/resources. Read when the panel is opened; while it stays open, read
// again after the run's own pushes (status, epochs) at most every 15 s. It never polls.
(function () {
  "use strict";
  var NNT = window.NNT, Kit = window.NNTChart;
  var panel = document.getElementById("resources-panel");
  if (!NNT || !window.Plotly || !panel) { return; }
  var simId = JSON.parse(document.getElementById("initial-metrics").textContent).simulation_id;
  var OPEN_KEY = "nnt.resources.open";
  var MIN_GAP_MS = 15000;
  var lastRead = 0, pending = null, loading = false;
  window.nntResources = { reads: 0, samples: null };

  function bytesUnit(max) {
    var units = [["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
    for (var i = 0; i < units.length; i++) { if (max >= units[i][1]) { return { label: units[i][0], div: units[i][1] }; } }
    return { label: "bytes", div: 1 };
  }
  function scaled(values, div) { return values.map(function (v) { return v === null ? null : v / div; }); }
  function maxOf(lists) {
    var m = 0;
    lists.forEach(function (l) { l.forEach(function (v) { if (v !== null && v > m) { m = v; } }); });
    return m;
  }
  function layout(unit, ytitle, extra, legend) {
    var l = NNT.layout({ height: 250, margin: { l: 60, r: 12, t: 8, b: 44 }, hovermode: "x unified",
                         xaxis: { title: { text: "wall time (" + unit.label + " since start)" }, gridcolor: "#e2e8f0", zeroline: false },
                         yaxis: Object.assign({ title: { text: ytitle }, gridcolor: "#e2e8f0", zeroline: false, automargin: true, rangemode: "tozero" }, extra || {}),
                         showlegend: legend !== false, uirevision: "resources" });
    if (Kit) { l.legend = Kit.legend(); }
    return l;
  }
  function line(name, x, y, color, extra) {
    return Object.assign({ name: name, x: x, y: y, type: "scatter", mode: "lines", line: { color: color, width: 2 },
                           hovertemplate: "%{y:.3~f}<extra>" + name + "</extra>" }, extra || {});
  }
  function plot(el, traces, l) {
    var done = NNT.plot(el, traces, l);
    if (Kit && done && done.then) { done.then(function () { Kit.autoY(el); Kit.afterUpdate(el); }); }
  }

  function draw(d) {
    var empty = document.getElementById("resources-empty"), charts = document.getElementById("resources-charts");
    var note = document.getElementById("resources-note");
    window.nntResources.samples = d.samples;
    empty.classList.toggle("hidden", d.seconds.length > 0);
    charts.classList.toggle("hidden", d.seconds.length === 0);
    if (!d.seconds.length) { note.textContent = "no samples yet"; return; }
    var span = d.seconds[d.seconds.length - 1] || 0;
    var unit = Kit ? Kit.timeUnit(span) : { div: 1, label: "s" };
    var x = d.seconds.map(function (s) { return s / unit.div; });
    note.textContent = d.samples + " samples" + (d.samples > d.seconds.length ? " · " + d.seconds.length + " points (mean %, peak memory per point)" : "");

    plot(document.getElementById("res-cpu"), [line("CPU", x, d.cpu_percent, NNT.COLORS[0], { hovertemplate: "%{y:.1f}%<extra>CPU</extra>" })],
         layout(unit, "CPU % (100 = one core)", null, false));

    var hasLimit = d.memory_limit_bytes.some(function (v) { return v !== null; });
    var mu = bytesUnit(maxOf([d.memory_bytes, hasLimit ? d.memory_limit_bytes : []]));
    var mem = [line("memory", x, scaled(d.memory_bytes, mu.div), NNT.COLORS[2], { fill: "tozeroy", fillcolor: "rgba(5,150,105,.10)",
                    hovertemplate: "%{y:.3~f} " + mu.label + "<extra>memory</extra>" })];
    if (hasLimit) {
      mem.push(line("limit", x, scaled(d.memory_limit_bytes, mu.div), "#94a3b8", { line: { color: "#94a3b8", width: 1.5, dash: "dash" },
                    hovertemplate: "%{y:.3~f} " + mu.label + "<extra>limit</extra>" }));
    }
    plot(document.getElementById("res-memory"), mem, layout(unit, mu.label));

    var gpu = d.has_gpu;
    document.getElementById("res-gpu-box").classList.toggle("hidden", !gpu);
    document.getElementById("res-gpu-memory-box").classList.toggle("hidden", !gpu);
    if (!gpu) { return; }
    plot(document.getElementById("res-gpu"), [line("GPU", x, d.gpu_percent, NNT.COLORS[4], { hovertemplate: "%{y:.1f}%<extra>GPU</extra>" })],
         layout(unit, "GPU %", { range: [0, 105], rangemode: "normal" }, false));
    var gu = bytesUnit(maxOf([d.gpu_memory_bytes]));
    plot(document.getElementById("res-gpu-memory"), [line("GPU memory", x, scaled(d.gpu_memory_bytes, gu.div), NNT.COLORS[5],
         { fill: "tozeroy", fillcolor: "rgba(8,145,178,.10)", hovertemplate: "%{y:.3~f} " + gu.label + "<extra>GPU memory</extra>" })],
         layout(unit, gu.label, null, false));
  }

  function read() {
    if (loading) { return; }
    loading = true; lastRead = Date.now();
    NNT.api("GET", "/api/simulations/" + simId + "/resources?max_points=800").then(function (d) {
      window.nntResources.reads += 1;
      draw(d);
    }).catch(function (err) {
      var empty = document.getElementById("resources-empty");
      empty.textContent = "Could not read the resource samples: " + err.message;
      empty.classList.remove("hidden");
    }).then(function () { loading = false; });
  }
  // A push from the run: new samples are likely; read again, but not more than every MIN_GAP_MS.
  function soon() {
    if (!panel.open || pending) { return; }
    var wait = Math.max(0, lastRead + MIN_GAP_MS - Date.now());
    pending = setTimeout(function () { pending = null; if (panel.open) { read(); } }, wait);
  }

  panel.addEventListener("toggle", function () {
    try { window.localStorage.setItem(OPEN_KEY, panel.open ? "1" : ""); } catch (e) { /* not remembered */ }
    if (panel.open) { read(); }
  });
  try { if (window.localStorage.getItem(OPEN_KEY) === "1") { panel.open = true; } } catch (e) { /* closed */ }
  NNT.socket.on("epochs", function (msg) { if (msg.simulation_id === simId) { soon(); } });
  NNT.socket.on("status", function (msg) { if (msg.simulation_id === simId) { soon(); } });
})();
