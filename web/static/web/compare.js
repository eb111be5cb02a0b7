// Comparisons tab: this run minus another (both live), and a tag group's mean with a min/max
// band (live from the tag's aggregate pushes). Rendered on first show; never polls.
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

  // ---- difference ------------------------------------------------------------------------
  function drawDiff() {
    var el = document.getElementById("diff-chart"), metric = document.getElementById("diff-metric").value;
    var empty = document.getElementById("diff-empty");
    if (!other || !metric) { NNT.clear(el); empty.classList.remove("hidden"); return; }
    var a = A[metric] || {}, b = B[metric] || {};
    var both = sortedEpochs(a).filter(function (e) { return b[e] !== undefined; });
    empty.classList.toggle("hidden", both.length > 0);
    if (!both.length) { empty.textContent = "The two runs have no logged epoch of " + NNT.label(metric) + " in common yet."; }
    var ea = sortedEpochs(a), eb = sortedEpochs(b);
    var traces = [
      { name: "A · this run", x: ea, y: ea.map(function (e) { return a[e]; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[0], width: 2 } },
      { name: "B · " + otherName, x: eb, y: eb.map(function (e) { return b[e]; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[3], width: 2 } },
      { name: "A − B", x: both, y: both.map(function (e) { return a[e] - b[e]; }), type: "scatter", mode: "lines", yaxis: "y2", xaxis: "x",
        fill: "tozeroy", line: { color: NNT.COLORS[4], width: 2 }, fillcolor: "rgba(124,58,237,.12)" },
    ];
    el.setAttribute("data-points", String(both.length));
    NNT.plot(el, traces, NNT.layout({
      height: 440, grid: { rows: 2, columns: 1, subplots: [["xy"], ["xy2"]], roworder: "top to bottom" },
      yaxis: { title: { text: NNT.label(metric) }, domain: [0.5, 1], gridcolor: "#e2e8f0", zeroline: false, automargin: true },
      yaxis2: { title: { text: "A − B" }, domain: [0, 0.42], anchor: "x", gridcolor: "#e2e8f0", zeroline: true, zerolinecolor: "#94a3b8", automargin: true },
      legend: { orientation: "h", y: -0.14 },
    }));
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
  function drawAgg() {
    var el = document.getElementById("agg-chart"), metric = document.getElementById("agg-metric").value;
    var empty = document.getElementById("agg-empty");
    if (!tag || !metric || !agg[metric]) { NNT.clear(el); empty.classList.remove("hidden"); return; }
    empty.classList.add("hidden");
    var m = agg[metric], eps = sortedEpochs(m), mine = ownMap(metric), myEps = sortedEpochs(mine);
    var traces = [
      { name: "max", x: eps, y: eps.map(function (e) { return m[e].max; }), type: "scatter", mode: "lines", line: { width: 0, color: "rgba(37,99,235,.25)" }, showlegend: false, hovertemplate: "max %{y:.4g}<extra></extra>" },
      { name: "min–max", x: eps, y: eps.map(function (e) { return m[e].min; }), type: "scatter", mode: "lines", fill: "tonexty", fillcolor: "rgba(37,99,235,.15)", line: { width: 0, color: "rgba(37,99,235,.25)" }, hovertemplate: "min %{y:.4g}<extra></extra>" },
      { name: "mean of “" + tag + "”", x: eps, y: eps.map(function (e) { return m[e].mean; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[0], width: 2 },
        customdata: eps.map(function (e) { return m[e].count; }), hovertemplate: "mean %{y:.4g} (%{customdata} runs)<extra></extra>" },
      { name: "this run", x: myEps, y: myEps.map(function (e) { return mine[e]; }), type: "scatter", mode: "lines", line: { color: NNT.COLORS[1], width: 2, dash: "dot" } },
    ];
    el.setAttribute("data-points", String(eps.length));
    NNT.plot(el, traces, NNT.layout({ height: 380, yaxis: { title: { text: NNT.label(metric) }, gridcolor: "#e2e8f0", zeroline: false, automargin: true } }));
  }
  var redrawAgg = NNT.debounce(drawAgg, 250);
  function chooseTag(t) {
    tag = t || null; agg = {};
    if (!tag) { drawAgg(); return; }
    NNT.api("GET", "/api/tags/aggregates?tag=" + encodeURIComponent(tag)).then(function (d) {
      Object.keys(d.metrics).forEach(function (metric) {
        var s = d.metrics[metric], out = agg[metric] = {};
        s.epochs.forEach(function (e, i) { out[e] = { mean: s.mean[i], min: s.min[i], max: s.max[i], count: s.count[i] }; });
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
  NNT.socket.on("tag", function (msg) {
    if (!shown || msg.tag !== tag) { return; }
    (msg.aggregates || []).forEach(function (a) {
      var m = agg[a.metric] = agg[a.metric] || {};
      m[a.epoch] = { mean: a.mean, min: a.min, max: a.max, count: a.count };
    });
    var sel = document.getElementById("agg-metric");
    if (!sel.value) { fillMetrics(sel, Object.keys(agg).sort()); }
    redrawAgg();
  });

  document.getElementById("other-select").addEventListener("change", function (ev) { chooseOther(ev.target.value); });
  document.getElementById("diff-metric").addEventListener("change", drawDiff);
  document.getElementById("tag-select").addEventListener("change", function (ev) { chooseTag(ev.target.value); });
  document.getElementById("agg-metric").addEventListener("change", drawAgg);
  document.addEventListener("nnt:tags", function (ev) { if (shown) { fillTags(ev.detail); } });
  NNT.tabs.on("comparisons", function (first) {
    if (!first) { return; }
    shown = true;
    fillTags(initial.tags || []);
  });
})();
