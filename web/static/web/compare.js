// Comparisons tab: this run minus another (both live), and a tag group's mean with a min–max or
// ±1 std band (live from the tag's aggregate pushes). Rendered on first show; never polls.
// Smoothing and log scales follow the page's chart controls (chartkit.js).
(function () {
  "use strict";
  var NNT = window.NNT;
  if (!NNT || !window.Plotly || !document.getElementById("panel-comparisons")) { return; }
  var initial = JSON.parse(document.getElementById("initial-metrics").textContent);
  var simId = initial.simulation_id, store = NNT.metrics;
  var other = null, otherName = "", A = {}, B = {};       // metric -> {epoch: value}
  var tag = null, agg = {};                                 // metric -> {epoch: {mean, min, max, count}}
  var shown = false;

  function toMap(epochs, values) { var m = {}; epochs.forEach(function (e, i) { if (values[i] !== null) { m[e] = values[i]; } }); return m; }
  function sortedEpochs(m) { return Object.keys(m).map(Number).sort(function (a, b) { return a - b; }); }
  function fillMetrics(sel, names) {
    var keep = sel.value;
    sel.innerHTML = "";
    names.forEach(function (n) { var o = document.createElement("option"); o.value = n; o.textContent = NNT.label(n); sel.appendChild(o); });
    if (names.indexOf(keep) !== -1) { sel.value = keep; } else if (names.indexOf("val_loss") !== -1) { sel.value = "val_loss"; } else if (names.indexOf("loss") !== -1) { sel.value = "loss"; }
  }
  function ownMap(metric) { var s = store.series[metric]; return s ? toMap(s.x, s.y) : {}; }

  // ---- chart controls ------------------------------------------------------------------------
  // Comparisons align runs by epoch (the tag aggregates are per epoch); the page's smoothing and
  // each chart's log toggle apply, and a zoom survives live redraws (uirevision).
  var Kit = window.NNTChart;
  function weight() { return Kit ? Kit.settings.get().smoothing : 0; }
  function smooth(traces) { return Kit ? Kit.smoothTraces(traces, weight()) : traces; }
  function draw(el, traces, layout, key, axes) {
    if (Kit) {
      layout.legend = Kit.legend();
      layout.uirevision = "compare";
      Kit.applyControls(el, layout, key, axes);
    }
    var done = NNT.plot(el, traces, layout);
    if (Kit && done && done.then) { done.then(function () { Kit.autoY(el); Kit.afterUpdate(el); }); }
    return done;
  }

  // ---- difference ------------------------------------------------------------------------
  function drawDiff() {
    var el = document.getElementById("diff-chart"), metric = document.getElementById("diff-metric").value;
    var empty = document.getElementById("diff-empty");
    el.classList.toggle("hidden", !other || !metric);   // no blank chart-sized hole before a choice
    if (!other || !metric) { NNT.clear(el); empty.classList.remove("hidden"); return; }
    var a = A[metric] || {}, b = B[metric] || {};
    var both = sortedEpochs(a).filter(function (e) { return b[e] !== undefined; });
    empty.classList.toggle("hidden", both.length > 0);
    if (!both.length) { empty.textContent = "The two runs have no logged epoch of " + NNT.label(metric) + " in common yet."; }
    var ea = sortedEpochs(a), eb = sortedEpochs(b);
    var traces = smooth([
      { name: "A · this run", x: ea, y: ea.map(function (e) { return a[e]; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[0], width: 2 },
        hovertemplate: "A %{y:.4g}<extra></extra>" },
      { name: "B · " + otherName, x: eb, y: eb.map(function (e) { return b[e]; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[3], width: 2 },
        hovertemplate: "B %{y:.4g}<extra></extra>" },
      { name: "A − B", x: both, y: both.map(function (e) { return a[e] - b[e]; }), type: "scatter", mode: "lines", yaxis: "y2", xaxis: "x",
        fill: "tozeroy", line: { color: NNT.COLORS[4], width: 2 }, fillcolor: "rgba(124,58,237,.12)", hovertemplate: "A − B %{y:.4g}<extra></extra>" },
    ]);
    el.setAttribute("data-points", String(both.length));
    draw(el, traces, NNT.layout({
      height: 460, margin: { l: 60, r: 12, t: 8, b: 44 },
      grid: { rows: 2, columns: 1, subplots: [["xy"], ["xy2"]], roworder: "top to bottom" },
      yaxis: { title: { text: NNT.label(metric) }, domain: [0.5, 1], gridcolor: "#e2e8f0", zeroline: false, automargin: true },
      yaxis2: { title: { text: "A − B" }, domain: [0, 0.42], anchor: "x", gridcolor: "#e2e8f0", zeroline: true, zerolinecolor: "#94a3b8", automargin: true },
    }), "diff-chart", ["yaxis"]);
  }
  var redrawDiff = NNT.debounce(drawDiff, 250);
  function chooseOther(id) {
    other = id || null; A = {}; B = {};
    if (!other) { drawDiff(); return; }
    var sel = document.getElementById("other-select");
    otherName = sel.options[sel.selectedIndex].textContent;
    NNT.api("GET", "/api/simulations/" + simId + "/compare?other=" + other).then(function (d) {
      Object.keys(d.metrics).forEach(function (m) {
        A[m] = toMap(d.metrics[m].epochs, d.metrics[m].a); B[m] = toMap(d.metrics[m].epochs, d.metrics[m].b);
      });
      // A's epochs B has not reached yet still matter: start A from the full live store.
      Object.keys(store.series).forEach(function (m) { A[m] = Object.assign(ownMap(m), A[m] || {}); });
      var names = Object.keys(d.metrics).length ? Object.keys(d.metrics) : Object.keys(store.series);
      fillMetrics(document.getElementById("diff-metric"), names.filter(function (n) { return n !== "epoch_time_s" && n !== "samples_per_s"; }).sort());
      NNT.socket.subscribe({ simulation: other });
      drawDiff();
    }).catch(function (err) { var e = document.getElementById("diff-empty"); e.classList.remove("hidden"); e.textContent = "Could not compare: " + err.message; });
  }

  // ---- tag group -------------------------------------------------------------------------
  // Runs of different lengths: the band is drawn only over the epochs at least two runs reached
  // (one run has no spread); the mean goes on, faint, where a single run is left. The hover
  // tells how many of the group's runs each point covers.
  var groupSize = 0;
  function band(m, eps, kind) {
    var lo = [], hi = [];
    eps.forEach(function (e) {
      var p = m[e];
      if (kind === "std" && p.std !== null && p.std !== undefined) { lo.push(p.mean - p.std); hi.push(p.mean + p.std); }
      else { lo.push(p.min); hi.push(p.max); }
    });
    var w = weight();
    return w > 0 && Kit ? { lo: Kit.ema(lo, w), hi: Kit.ema(hi, w) } : { lo: lo, hi: hi };
  }
  function drawAgg() {
    var el = document.getElementById("agg-chart"), metric = document.getElementById("agg-metric").value;
    var empty = document.getElementById("agg-empty"), kind = document.getElementById("agg-band").value;
    el.classList.toggle("hidden", !tag || !metric || !agg[metric]);
    if (!tag || !metric || !agg[metric]) { NNT.clear(el); empty.classList.remove("hidden"); return; }
    empty.classList.add("hidden");
    var m = agg[metric], eps = sortedEpochs(m), mine = ownMap(metric), myEps = sortedEpochs(mine);
    var spread = eps.filter(function (e) { return m[e].count >= 2; });
    var edges = band(m, spread, kind), label = kind === "std" ? "mean ± 1 std" : "min–max";
    var of = groupSize ? " of " + groupSize : "";
    var runs = function (list) { return list.map(function (e) { return m[e].count; }); };
    var bandColor = "rgba(37,99,235,.16)", edge = { width: 0, color: "rgba(37,99,235,.25)" };
    var traces = [
      { name: "band top", x: spread, y: edges.hi, type: "scatter", mode: "lines", line: edge, showlegend: false, legendgroup: "band",
        meta: { smooth: false }, hovertemplate: (kind === "std" ? "+1 std" : "max") + " %{y:.4g}<extra></extra>" },
      { name: label + " (epochs ≥ 2 runs reached)", x: spread, y: edges.lo, type: "scatter", mode: "lines", fill: "tonexty", fillcolor: bandColor,
        line: edge, legendgroup: "band", meta: { smooth: false }, hovertemplate: (kind === "std" ? "−1 std" : "min") + " %{y:.4g}<extra></extra>" },
    ];
    // The mean where two runs or more reached; where a single run is left, its line, fainter.
    // (each stretch of it starts at the last epoch of the mean before it, so the two lines join)
    var lone = eps.filter(function (e, i) {
      return m[e].count < 2 || (i + 1 < eps.length && m[eps[i + 1]].count < 2);
    });
    var loneEpochs = eps.length - spread.length;
    var meanOf = function (list) { return list.map(function (e) { return m[e].mean; }); };
    var lines = [
      { name: "mean of “" + tag + "”", x: spread, y: meanOf(spread), type: "scatter", mode: "lines",
        line: { color: NNT.COLORS[0], width: 2 }, customdata: runs(spread),
        hovertemplate: "mean %{y:.4g} · %{customdata}" + of + " runs<extra></extra>" },
    ];
    if (loneEpochs) {
      lines.push({ name: "a single run reached (" + loneEpochs + " epochs)", x: lone, y: meanOf(lone), type: "scatter", mode: "lines",
                   connectgaps: false, line: { color: "rgba(37,99,235,.45)", width: 1.5, dash: "dot" }, customdata: runs(lone),
                   hovertemplate: "1" + of + " runs: %{y:.4g}<extra></extra>" });
    }
    lines.push({ name: "this run", x: myEps, y: myEps.map(function (e) { return mine[e]; }), type: "scatter", mode: "lines",
                 line: { color: NNT.COLORS[1], width: 2, dash: "dot" }, hovertemplate: "this run %{y:.4g}<extra></extra>" });
    traces = traces.concat(smooth(lines));
    el.setAttribute("data-points", String(eps.length));
    draw(el, traces, NNT.layout({ height: 400, margin: { l: 60, r: 12, t: 8, b: 44 },
      yaxis: { title: { text: NNT.label(metric) }, gridcolor: "#e2e8f0", zeroline: false, automargin: true } }), "agg-chart", ["yaxis"]);
  }
  var redrawAgg = NNT.debounce(drawAgg, 250);
  function chooseTag(t) {
    tag = t || null; agg = {};
    if (!tag) { drawAgg(); return; }
    NNT.api("GET", "/api/tags/aggregates?tag=" + encodeURIComponent(tag)).then(function (d) {
      groupSize = d.simulations;
      Object.keys(d.metrics).forEach(function (metric) {
        var s = d.metrics[metric], out = agg[metric] = {};
        s.epochs.forEach(function (e, i) {
          out[e] = { mean: s.mean[i], min: s.min[i], max: s.max[i], count: s.count[i], std: s.std ? s.std[i] : null };
        });
      });
      fillMetrics(document.getElementById("agg-metric"), Object.keys(agg).filter(function (n) { return n !== "epoch_time_s" && n !== "samples_per_s"; }).sort());
      var empty = document.getElementById("agg-empty");
      empty.textContent = d.simulations + " of your simulations carry “" + tag + "”; none has logged an epoch yet.";
      NNT.socket.subscribe({ tag: tag });
      drawAgg();
    }).catch(function (err) { var e = document.getElementById("agg-empty"); e.classList.remove("hidden"); e.textContent = "Could not load the group: " + err.message; });
  }
  function fillTags(tags) {
    var sel = document.getElementById("tag-select"), keep = sel.value;
    sel.innerHTML = "";
    if (!tags.length) {
      var o = document.createElement("option"); o.value = ""; o.textContent = "no tags yet"; sel.appendChild(o); sel.disabled = true;
      document.getElementById("agg-empty").textContent = "Add a tag to this simulation (above) and to others: their mean is drawn with a min/max band, and this run on top.";
      chooseTag(null); return;
    }
    sel.disabled = false;
    tags.forEach(function (t) { var o = document.createElement("option"); o.value = t; o.textContent = t; sel.appendChild(o); });
    if (tags.indexOf(keep) !== -1) { sel.value = keep; }
    if (sel.value !== tag) { chooseTag(sel.value); }
  }

  // ---- live --------------------------------------------------------------------------------
  NNT.socket.on("epochs", function (msg) {
    if (!shown) { return; }
    var target = msg.simulation_id === simId ? A : (msg.simulation_id === other ? B : null);
    if (target && other) {
      (msg.points || []).forEach(function (p) {
        Object.keys(p.values || {}).forEach(function (m) { (target[m] = target[m] || {})[p.epoch] = p.values[m]; });
      });
      redrawDiff();
    }
    if (msg.simulation_id === simId && tag) { redrawAgg(); }
  });
  NNT.socket.on("status", function (msg) {   // the run compared with was deleted: gone here too
    if (!other || msg.simulation_id !== other || !msg.status || msg.status.status !== "deleted") { return; }
    var sel = document.getElementById("other-select"), gone = otherName;
    var opt = sel.querySelector('option[value="' + CSS.escape(other) + '"]');
    if (opt) { opt.remove(); }
    sel.value = ""; chooseOther(null);
    document.getElementById("diff-empty").textContent = gone + " was deleted; choose another simulation.";
  });
  NNT.socket.on("tag", function (msg) {
    if (!shown || msg.tag !== tag) { return; }
    (msg.aggregates || []).forEach(function (a) {
      var m = agg[a.metric] = agg[a.metric] || {};
      m[a.epoch] = { mean: a.mean, min: a.min, max: a.max, count: a.count, std: a.std === undefined ? null : a.std };
      groupSize = Math.max(groupSize, a.count);
    });
    var sel = document.getElementById("agg-metric");
    if (!sel.value) { fillMetrics(sel, Object.keys(agg).sort()); }
    redrawAgg();
  });

  document.getElementById("other-select").addEventListener("change", function (ev) { chooseOther(ev.target.value); });
  document.getElementById("diff-metric").addEventListener("change", drawDiff);
  document.getElementById("tag-select").addEventListener("change", function (ev) { chooseTag(ev.target.value); });
  document.getElementById("agg-metric").addEventListener("change", drawAgg);
  document.getElementById("agg-band").addEventListener("change", drawAgg);
  if (Kit) { Kit.settings.onChange(function () { if (shown) { drawDiff(); drawAgg(); } }); }
  document.addEventListener("nnt:tags", function (ev) { if (shown) { fillTags(ev.detail); } });
  NNT.tabs.on("comparisons", function (first) {
    if (!first) { return; }
    shown = true;
    fillTags(initial.tags || []);
  });
})();
