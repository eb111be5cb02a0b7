// Graphs tab: training curves, per-layer histograms over epochs, the 3-D value scatter (the
// page's only WebGL plot), gradients, activations and health flags. Rendered on first show;
// curves extend from WebSocket pushes, layer data is re-read when a push says a new epoch landed.
(function () {
  "use strict";
  var NNT = window.NNT;
  if (!NNT || !window.Plotly || !document.getElementById("panel-graphs")) { return; }
  var simId = JSON.parse(document.getElementById("initial-metrics").textContent).simulation_id;
  var store = NNT.metrics;
  var FLAG_TEXT = { vanishing_gradient: "vanishing gradient", exploding_gradient: "exploding gradient",
                    dead_units: "dead units", nonfinite: "NaN or infinite values" };
  var rendered = false, tensors = [], stale = false, loading = false;

  // ---- training curves ---------------------------------------------------------------------
  var curveCharts = {};   // base name -> {el, names: [metric...]}
  function curveGroups() {
    var groups = {}, order = [];
    Object.keys(store.series).forEach(function (name) {
      if (name === "epoch_time_s" || name === "samples_per_s") { return; }
      var base = name.replace(/^val_/, "");
      if (!groups[base]) { groups[base] = []; order.push(base); }
      groups[base].push(name);
    });
    var rank = function (b) { return b === "loss" ? 0 : b === "accuracy" ? 1 : b === "learning_rate" ? 3 : 2; };
    order.sort(function (a, b) { return rank(a) - rank(b) || a.localeCompare(b); });
    return order.map(function (b) { return { base: b, names: groups[b].sort() }; });
  }
  function curveTrace(name, i) {
    var s = store.series[name];
    return { name: NNT.label(name), x: s.x.slice(), y: s.y.slice(), type: "scatter", mode: s.x.length > 200 ? "lines" : "lines+markers",
             line: { width: 2, color: NNT.COLORS[i % NNT.COLORS.length], dash: name.indexOf("val_") === 0 ? "dash" : "solid",
                     shape: name === "learning_rate" ? "hv" : "linear" },
             marker: { size: 4 }, hovertemplate: "%{y:.4g}<extra>" + NNT.label(name) + "</extra>" };
  }
  function drawCurves() {
    var grid = document.getElementById("curve-grid");
    var groups = curveGroups();
    Object.keys(curveCharts).forEach(function (b) { Plotly.purge(curveCharts[b].el); });
    grid.innerHTML = ""; curveCharts = {};
    document.getElementById("curves-empty").classList.toggle("hidden", groups.length > 0);
    var total = 0;
    groups.forEach(function (g) {
      var box = document.createElement("div");
      var h = document.createElement("h3"); h.textContent = NNT.label(g.base); box.appendChild(h);
      var el = document.createElement("div"); el.className = "chart"; el.id = "curve-" + g.base; box.appendChild(el);
      grid.appendChild(box);
      var traces = g.names.map(function (n, i) { total += store.series[n].x.length; return curveTrace(n, i); });
      var yaxis = { gridcolor: "#e2e8f0", zeroline: false, automargin: true, title: { text: "" } };
      if (g.base === "learning_rate") { yaxis.type = "log"; yaxis.exponentformat = "power"; }
      NNT.plot(el, traces, NNT.layout({ yaxis: yaxis }));
      curveCharts[g.base] = { el: el, names: g.names };
    });
    document.getElementById("curves-count").textContent = total ? total + " points" + (store.raw ? " (raw)" : "") : "";
  }
  store.onChange(function (type, fresh) {
    if (!rendered) { return; }
    if (type === "reset") { drawCurves(); return; }
    var redraw = false;
    Object.keys(fresh).forEach(function (name) {
      var base = name.replace(/^val_/, "");
      if (name === "epoch_time_s" || name === "samples_per_s") { return; }
      var c = curveCharts[base];
      if (!c || c.names.indexOf(name) === -1) { redraw = true; return; }
      Plotly.extendTraces(c.el, { x: [fresh[name].x], y: [fresh[name].y] }, [c.names.indexOf(name)]);
    });
    if (redraw) { drawCurves(); }
    scheduleTensors();
  });

  // ---- tensors -----------------------------------------------------------------------------
  function layers() {
    var seen = {}, out = [];
    tensors.forEach(function (t) {
      if (t.kind === "activation" || t.kind === "gradient" || seen[t.layer_name]) { return; }
      seen[t.layer_name] = true; out.push(t.layer_name);
    });
    return out;
  }
  function fillSelect(sel, values, labels) {
    var keep = sel.value;
    sel.innerHTML = "";
    values.forEach(function (v, i) { var o = document.createElement("option"); o.value = v; o.textContent = labels ? labels[i] : v; sel.appendChild(o); });
    if (values.indexOf(keep) !== -1) { sel.value = keep; }
  }
  function find(layer, kinds) {
    return tensors.filter(function (t) { return t.layer_name === layer && kinds.indexOf(t.kind) !== -1; })[0];
  }
  function heatmap(el, t, what) {
    if (!t || !t.hist.edges.length) { NNT.empty(el, "No " + what + " recorded for this layer."); return; }
    var e = t.hist.edges, mids = [];
    for (var i = 0; i < e.length - 1; i++) { mids.push((e[i] + e[i + 1]) / 2); }
    var z = mids.map(function (_, j) { return t.hist.density.map(function (row) { return row.length ? row[j] : null; }); });
    NNT.plot(el, [{ type: "heatmap", x: t.epochs, y: mids, z: z, colorscale: "Blues", reversescale: false,
                        colorbar: { title: { text: "share", side: "right" }, thickness: 10 },
                        hovertemplate: "epoch %{x}<br>value %{y:.3g}<br>%{z:.1%} of values<extra></extra>" }],
                 NNT.layout({ yaxis: { title: { text: "value" }, gridcolor: "#e2e8f0", zeroline: false }, showlegend: false, hovermode: "closest" }));
  }
  function flagged(t) {
    var xs = [], ys = [], texts = [];
    t.epochs.forEach(function (ep, i) {
      if (t.flags[i] && t.flags[i].length) { xs.push(ep); texts.push(t.flags[i].map(function (f) { return FLAG_TEXT[f] || f; }).join(", ")); ys.push(i); }
    });
    return { x: xs, idx: ys, text: texts };
  }
  function lineChart(el, list, stat, opts) {
    if (!list.length) { NNT.empty(el, opts.empty); return; }
    var traces = [];
    list.forEach(function (t, i) {
      var color = NNT.COLORS[i % NNT.COLORS.length];
      var name = t.kind === "activation" ? t.layer_name : t.layer_name + " · " + t.variable.split("/").pop();
      var tr = { name: name, x: t.epochs, y: t.stats[stat], type: "scatter", mode: "lines", line: { color: color, width: 2 },
                 hovertemplate: "%{y:.3g}<extra>" + name + "</extra>" };
      if (opts.errorStat) { tr.error_y = { type: "data", array: t.stats[opts.errorStat], visible: true, thickness: 1, width: 0, color: color }; }
      traces.push(tr);
      var f = flagged(t);
      if (f.x.length) {
        traces.push({ name: name + " flagged", x: f.x, y: f.idx.map(function (k) { return t.stats[stat][k]; }), text: f.text,
                      type: "scatter", mode: "markers", marker: { color: "#dc2626", size: 9, symbol: "x" }, showlegend: false,
                      hovertemplate: "%{text}<extra>" + name + "</extra>" });
      }
    });
    var yaxis = { gridcolor: "#e2e8f0", zeroline: false, automargin: true, type: opts.log ? "log" : "linear", title: { text: opts.ytitle || "" } };
    if (opts.range) { yaxis.range = opts.range; }
    NNT.plot(el, traces, NNT.layout({ yaxis: yaxis, hovermode: "closest" }));
  }
  function drawHealth() {
    var box = document.getElementById("health");
    box.innerHTML = "";
    var items = [];
    tensors.forEach(function (t) {
      var byFlag = {};
      t.flags.forEach(function (fl, i) { (fl || []).forEach(function (f) { (byFlag[f] = byFlag[f] || []).push(t.epochs[i]); }); });
      Object.keys(byFlag).forEach(function (f) {
        var eps = byFlag[f];
        items.push(t.layer_name + " " + t.kind + ": " + (FLAG_TEXT[f] || f) + " at epoch" + (eps.length > 1 ? "s " + eps[0] + "–" + eps[eps.length - 1] + " (" + eps.length + ")" : " " + eps[0]));
      });
    });
    var p = document.createElement("p");
    if (!tensors.length) { return; }
    if (!items.length) {
      p.className = "health-ok"; p.textContent = "Healthy: no vanishing or exploding gradients, dead units or non-finite values flagged.";
      box.appendChild(p); return;
    }
    p.className = "health-bad"; p.textContent = "Health flags (" + items.length + ")";
    var ul = document.createElement("ul"); ul.className = "health-list";
    items.slice(0, 12).forEach(function (text) { var li = document.createElement("li"); li.textContent = text; ul.appendChild(li); });
    box.appendChild(p); box.appendChild(ul);
  }
  function drawLayer() {
    var layer = document.getElementById("layer-select").value;
    heatmap(document.getElementById("heat-kernel"), find(layer, ["kernel", "weight"]), "weights");
    heatmap(document.getElementById("heat-bias"), find(layer, ["bias"]), "biases");
    var vars = tensors.filter(function (t) { return t.layer_name === layer && t.kind !== "activation"; });
    fillSelect(document.getElementById("scatter-variable"), vars.map(function (t) { return t.key; }),
               vars.map(function (t) { return t.kind + " · " + t.variable; }));
    drawScatter();
  }
  var scatterBusy = false;
  function drawScatter() {
    var key = document.getElementById("scatter-variable").value, el = document.getElementById("scatter3d");
    var note = document.getElementById("scatter-note");
    if (!key) { NNT.empty(el, "Choose a layer with recorded weights."); return; }
    if (scatterBusy) { return; }
    scatterBusy = true;
    NNT.api("GET", "/api/simulations/" + simId + "/tensors/values?key=" + encodeURIComponent(key) + "&max_values=2000&max_epochs=40")
      .then(function (d) {
        if (!d.epochs.length) { NNT.empty(el, "Only statistics recorded so far: whole tensors come every few logged epochs and at the end."); note.textContent = ""; return; }
        var x = [], y = [], z = [];
        d.epochs.forEach(function (ep, i) { d.values[i].forEach(function (v, j) { x.push(ep); y.push(d.index[j]); z.push(v); }); });
        note.textContent = (d.index.length < d.size ? d.index.length + " of " + d.size + " values (same random sample each epoch)" : d.size + " values") + " · " + d.epochs.length + " epochs";
        NNT.plot(el, [{ type: "scatter3d", mode: "markers", x: x, y: y, z: z,
                            marker: { size: 2, color: z, colorscale: "Viridis", opacity: 0.85 },
                            hovertemplate: "epoch %{x}<br>index %{y}<br>value %{z:.4g}<extra></extra>" }],
                     { height: 460, margin: { l: 0, r: 0, t: 0, b: 0 }, paper_bgcolor: "rgba(0,0,0,0)", font: NNT.FONT,
                       scene: { xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "index" } }, zaxis: { title: { text: "value" } },
                                camera: { eye: { x: 1.6, y: -1.6, z: 0.9 } } } });
      })
      .catch(function (err) { NNT.empty(el, "Could not load values: " + err.message); })
      .then(function () { scatterBusy = false; });
  }
  function drawTensors() {
    var names = layers();
    document.getElementById("layers-empty").classList.toggle("hidden", tensors.length > 0);
    fillSelect(document.getElementById("layer-select"), names);
    drawHealth();
    if (names.length) { drawLayer(); } else {
      var badge = document.getElementById("sim-status");
      var status = badge ? badge.textContent.trim() : "";
      var ended = ["failed", "stopped", "finished", "deleted"].indexOf(status) >= 0;
      var none = ended ? "No weights were recorded: the run " + status + " before its first logged epoch."
                       : "Waiting for the first recorded weights…";
      ["heat-kernel", "heat-bias", "scatter3d"].forEach(function (id) { NNT.empty(document.getElementById(id), none); });
    }
    var grads = tensors.filter(function (t) { return t.kind === "gradient"; });
    var acts = tensors.filter(function (t) { return t.kind === "activation"; });
    var noGrad = "No gradients recorded (collect.gradients is off, or no epoch logged yet).";
    var noAct = "No activations recorded (collect.activations is off, or no epoch logged yet).";
    lineChart(document.getElementById("grad-norm"), grads, "norm", { log: true, ytitle: "L2 norm", empty: noGrad });
    lineChart(document.getElementById("grad-cos"), grads, "cosine_prev", { range: [-1.05, 1.05], ytitle: "cosine", empty: noGrad });
    lineChart(document.getElementById("act-mean"), acts, "mean", { errorStat: "std", ytitle: "mean", empty: noAct });
    lineChart(document.getElementById("act-zero"), acts, "zero_fraction", { range: [-0.02, 1.02], ytitle: "fraction of zeros", empty: noAct });
  }
  function loadTensors() {
    if (loading) { stale = true; return; }
    loading = true; stale = false;
    NNT.api("GET", "/api/simulations/" + simId + "/tensors").then(function (data) {
      tensors = data; drawTensors();
    }).catch(function (err) {
      NNT.empty(document.getElementById("heat-kernel"), "Could not load layer data: " + err.message);
    }).then(function () { loading = false; if (stale && NNT.tabs.visible("graphs")) { loadTensors(); } });
  }
  // Tensors travel on their own topic and land shortly after the epoch's metrics.
  var refresh = NNT.debounce(loadTensors, 3000);
  function scheduleTensors() { if (NNT.tabs.visible("graphs")) { refresh(); } else { stale = true; } }

  document.getElementById("layer-select").addEventListener("change", drawLayer);
  document.getElementById("scatter-variable").addEventListener("change", drawScatter);
  NNT.tabs.on("graphs", function (first) {
    if (first) { rendered = true; drawCurves(); loadTensors(); } else if (stale) { loadTensors(); }
  });
})();
