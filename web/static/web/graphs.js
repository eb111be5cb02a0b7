// Graphs tab: training curves, per-layer distributions over epochs, the 3-D value scatter (the
// page's only WebGL plot), gradients, activations and health flags. Rendered on first show;
// curves extend from WebSocket pushes, layer data is re-read when a push says a new epoch landed.
// Layers scale to hundreds: statistics of all first, histograms and charts per layer as it
// scrolls into view, a few charts per idle moment (distributions.js draws them).
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

  // ---- layers: statistics first, histograms on demand, charts drawn as they scroll into view ----
  // ?eager=1 fetches everything and draws every chart at once: the peer bench/pages.py measures.
  var EAGER = /[?&]eager=1(&|$)/.test(location.search);
  var KIND_RANK = { kernel: 0, weight: 1, bias: 2, gradient: 3, activation: 4 };
  var MAX_KEYS = 100, MANY = 12, BATCH = 8;
  var TENSORS = "/api/simulations/" + simId + "/tensors";
  var hists = {}, byLayer = {}, layerOrder = [], cards = {}, built = null, inspected = null, picked = null;
  var view = "heatmap", filterText = "", flaggedOnly = false;
  var queue = [], idle = false, busy = 0, generation = 0, loaded = false, seen = EAGER, observer = null, waiting = [], pumping = false;
  var state = window.nntLayers = { layers: 0, charts: 0, ready: null, eager: EAGER };
  var $ = function (id) { return document.getElementById(id); };

  function leaf(t) { return t.variable.split("/").pop(); }
  function caption(t) {
    if (t.kind === "activation") { return "activations"; }
    if (t.kind === "gradient") { return "gradient · " + leaf(t); }
    return (t.kind === "bias" ? "bias" : "weights · " + leaf(t)) + (t.shape.length ? " " + t.shape.join("×") : "");
  }
  function seriesName(t) { return t.kind === "activation" ? t.layer_name : t.layer_name + " · " + leaf(t); }
  function group() {
    byLayer = {}; layerOrder = [];
    tensors.slice().sort(function (a, b) {
      return a.layer_index - b.layer_index || KIND_RANK[a.kind] - KIND_RANK[b.kind] || a.variable.localeCompare(b.variable);
    }).forEach(function (t) {
      if (!byLayer[t.layer_name]) { byLayer[t.layer_name] = []; layerOrder.push(t.layer_name); }
      byLayer[t.layer_name].push(t);
    });
  }
  function flagsOf(list) {
    var out = {};
    list.forEach(function (t) {
      t.flags.forEach(function (fl, i) { (fl || []).forEach(function (f) { (out[f] = out[f] || []).push(t.epochs[i]); }); });
    });
    return out;
  }
  function flagText(f, eps) {
    eps = eps.slice().sort(function (a, b) { return a - b; });
    return (FLAG_TEXT[f] || f) + " at epoch" + (eps.length > 1 ? "s " + eps[0] + "–" + eps[eps.length - 1] : " " + eps[0]);
  }
  function shows(layer) {
    if (filterText && layer.toLowerCase().indexOf(filterText) === -1) { return false; }
    return !flaggedOnly || Object.keys(flagsOf(byLayer[layer])).length > 0;
  }
  function fillSelect(sel, values, labels) {
    var keep = sel.value;
    sel.innerHTML = "";
    values.forEach(function (v, i) { var o = document.createElement("option"); o.value = v; o.textContent = labels ? labels[i] : v; sel.appendChild(o); });
    if (values.indexOf(keep) !== -1) { sel.value = keep; }
  }
  function find(layer, kinds) {
    return (byLayer[layer] || []).filter(function (t) { return kinds.indexOf(t.kind) !== -1; })[0];
  }

  // At most a few charts per idle moment, so scrolling and typing keep answering.
  function later(fn) { return window.requestIdleCallback ? requestIdleCallback(fn, { timeout: 150 }) : setTimeout(fn, 16); }
  function enqueue(job) {
    if (EAGER) { job(); return; }
    queue.push(job);
    if (!idle) { idle = true; later(drain); }
  }
  function drain(deadline) {
    idle = false;
    var n = 0;
    while (queue.length && (n === 0 || (deadline && deadline.timeRemaining && deadline.timeRemaining() > 12))) { queue.shift()(); n++; }
    if (queue.length) { idle = true; later(drain); } else { settle(); }
  }
  // First charts drawn and nothing left to fetch or draw: what bench/pages.py waits for.
  function settle() {
    if (state.ready === null && loaded && seen && !busy && !queue.length && !pumping) { state.ready = performance.now(); }
  }
  // A request in flight; settled a task later, once what its answer queued is in the queue.
  function track(promise) {
    busy++;
    var done = function () { busy--; setTimeout(settle, 0); };
    return promise.then(function (v) { done(); return v; }, function (err) { done(); throw err; });
  }
  function fetchHists(keys) {
    var missing = keys.filter(function (k) { return !hists[k]; }), parts = [];
    for (var i = 0; i < missing.length; i += MAX_KEYS) { parts.push(missing.slice(i, i + MAX_KEYS)); }
    return track(Promise.all(parts.map(function (part) {
      var query = part.map(function (k) { return "key=" + encodeURIComponent(k); }).join("&");
      return NNT.api("GET", TENSORS + "?" + query).then(function (data) {
        data.forEach(function (t) { hists[t.key] = t; });
      });
    })));
  }

  // ---- one card per layer, drawn when it scrolls into view ----
  function buildCards() {
    var list = $("layer-list");
    if (observer) { observer.disconnect(); }
    Object.keys(cards).forEach(function (l) { cards[l].charts.forEach(NNT.clear); });
    list.innerHTML = ""; cards = {}; waiting = [];
    if (!EAGER) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (en) {
          var card = en.target._card;
          card.visible = en.isIntersecting;
          if (card.visible && card.state === "idle") { want(card); }
        });
        seen = true; settle();
      }, { rootMargin: "300px 0px" });
    }
    layerOrder.forEach(function (layer, n) {
      var card = { layer: layer, series: byLayer[layer], charts: [], visible: false, state: "idle" };
      card.keys = card.series.map(function (t) { return t.key; });
      var el = card.el = document.createElement("article");
      el.className = "layer-card"; el.id = "layer-card-" + n; el.setAttribute("data-layer", layer); el._card = card;
      var head = document.createElement("header"), h = document.createElement("h3");
      h.innerHTML = '<span class="layer-index"></span> '; h.firstChild.textContent = "#" + card.series[0].layer_index;
      h.appendChild(document.createTextNode(layer));
      var flags = card.flagsEl = document.createElement("span"); flags.className = "layer-flags";
      head.appendChild(h); head.appendChild(flags);
      if (find(layer, ["kernel", "weight", "bias"])) {
        var b = document.createElement("button"); b.type = "button"; b.className = "linkbutton"; b.textContent = "Inspect";
        b.addEventListener("click", function () { inspect(layer); }); head.appendChild(b);
      }
      var grid = document.createElement("div"); grid.className = "layer-charts";
      card.series.forEach(function (t) {
        var fig = document.createElement("figure"), cap = document.createElement("figcaption"), chart = document.createElement("div");
        cap.textContent = caption(t); chart.className = "chart compact";
        fig.appendChild(cap); fig.appendChild(chart); grid.appendChild(fig); card.charts.push(chart);
      });
      el.appendChild(head); el.appendChild(grid); list.appendChild(el);
      cards[layer] = card; cardFlags(card);
      if (observer) { observer.observe(el); }
    });
    if (EAGER) { layerOrder.forEach(function (l) { queueCard(cards[l]); }); }
  }
  function cardFlags(card) {
    var fl = flagsOf(card.series);
    card.flagsEl.innerHTML = "";
    card.el.classList.toggle("flagged", Object.keys(fl).length > 0);
    Object.keys(fl).forEach(function (f) {
      var s = document.createElement("span"); s.className = "flag"; s.textContent = flagText(f, fl[f]); card.flagsEl.appendChild(s);
    });
  }
  function restale() {   // new data or another view: every card draws again when next in view
    layerOrder.forEach(function (l) {
      var card = cards[l];
      card.series = byLayer[l]; cardFlags(card);
      if (card.state !== "queued") { card.state = "idle"; }
      if (card.visible || EAGER) { want(card); }
    });
  }
  function want(card) {
    if (EAGER) { fetchHists(card.keys).then(function () { queueCard(card); }); return; }
    if (waiting.indexOf(card) === -1) { waiting.push(card); }
    pump();
  }
  function pump() {   // one request at a time, for the histograms of up to BATCH visible cards
    if (pumping) { return; }
    waiting = waiting.filter(function (c) { return c.visible && c.state === "idle"; });
    var batch = waiting.splice(0, BATCH);
    if (!batch.length) { settle(); return; }
    pumping = true;
    fetchHists([].concat.apply([], batch.map(function (c) { return c.keys; }))).then(function () {
      batch.forEach(queueCard);
    }, function (err) {
      batch.forEach(function (c) { c.charts.forEach(function (el) { NNT.empty(el, "Could not load histograms: " + err.message); }); });
    }).then(function () { pumping = false; pump(); });
  }
  function queueCard(card) {
    if (card.state === "queued") { return; }
    card.state = "queued"; card.skipped = false;
    var gen = generation;
    card.series.forEach(function (t, i) {
      enqueue(function () {
        // Scrolled away, or newer data came in since: draw again when next wanted.
        if ((!card.visible && !EAGER) || gen !== generation) { card.skipped = true; } else {
          var h = hists[t.key];
          NNT.dist.draw(card.charts[i], h || t, h ? h.hist : null, view, { compact: true });
          state.charts++;
        }
        if (i === card.series.length - 1) {
          card.state = card.skipped ? "idle" : "drawn";
          if (card.skipped && card.visible) { want(card); }
        }
      });
    });
  }

  // ---- filter, inspector, overview ----
  function applyFilter() {
    var shown = 0, flagged = 0;
    layerOrder.forEach(function (l) {
      var on = shows(l);
      cards[l].el.classList.toggle("hidden", !on);
      shown += on ? 1 : 0; flagged += cards[l].el.classList.contains("flagged") ? 1 : 0;
    });
    var n = layerOrder.length;
    $("layers-count").textContent = n ? n + " layer" + (n === 1 ? "" : "s") + " · " + flagged + " flagged" + (shown < n ? " · " + shown + " shown" : "") : "";
    $("layer-list-empty").classList.toggle("hidden", !n || shown > 0);
    fillSelect($("layer-select"), layerOrder.filter(function (l) { return shows(l) && find(l, ["kernel", "weight", "bias"]); }));
    drawOverview();
  }
  function inspect(layer) {
    $("layer-select").value = layer;
    drawLayer();
    $("layers-inspect").scrollIntoView({ block: "start" });
  }
  function layerEpochs(list) {
    var all = {};
    list.forEach(function (t) { if (t) { t.epochs.forEach(function (e) { all[e] = true; }); } });
    return Object.keys(all).map(Number).sort(function (a, b) { return a - b; });
  }
  function drawLayer() {
    var layer = inspected = $("layer-select").value;
    var vars = (byLayer[layer] || []).filter(function (t) { return t.kind !== "activation"; });
    fillSelect($("scatter-variable"), vars.map(function (t) { return t.key; }), vars.map(function (t) { return t.kind + " · " + t.variable; }));
    drawInspector();
    scatterWanted = true;
    if (scatterSeen || EAGER) { scatterWanted = false; enqueue(drawScatter); }
  }
  function drawInspector() {
    var layer = inspected;
    if (!layer) { return; }
    var shown = [find(layer, ["kernel", "weight"]), find(layer, ["bias"])];
    fetchHists(shown.filter(Boolean).map(function (t) { return t.key; })).then(function () {
      if (layer !== inspected) { return; }
      var got = shown.map(function (t) { return t ? hists[t.key] : null; });
      var epochs = layerEpochs(got), slider = $("epoch-slider");
      slider.max = String(Math.max(0, epochs.length - 1));
      slider.disabled = epochs.length < 2;
      slider._epochs = epochs;
      var at = picked === null ? -1 : epochs.indexOf(picked);
      slider.value = String(at === -1 ? epochs.length - 1 : at);
      if (at === -1) { picked = null; }
      enqueue(function () { inspectChart("kernel", got[0], "weights"); });
      enqueue(function () { inspectChart("bias", got[1], "biases"); });
      selectEpoch(false);
    }, function (err) { NNT.empty($("heat-kernel"), "Could not load layer data: " + err.message); });
  }
  function inspectChart(which, h, what) {
    var el = $("heat-" + which), hel = $("hist-" + which), epochs = $("epoch-slider")._epochs || [];
    hel.classList.toggle("hidden", !h);
    if (!h) { NNT.empty(el, "No " + what + " recorded for this layer."); NNT.clear(hel); return; }
    var epoch = epochs[Number($("epoch-slider").value)];
    NNT.dist.draw(el, h, h.hist, view, { selected: epoch });
    NNT.dist.histogram(hel, h, h.hist, epoch, what.charAt(0).toUpperCase() + what.slice(1));
  }
  // The slider's epoch: marked on both distributions, shown as plain histograms below them.
  function selectEpoch(user) {
    var slider = $("epoch-slider"), epochs = slider._epochs || [], i = Number(slider.value);
    var epoch = epochs[i];
    if (user) { picked = i === epochs.length - 1 ? null : epoch; }   // at the end: follow new epochs
    $("epoch-value").textContent = epoch === undefined ? "" : String(epoch);
    if (!user || epoch === undefined) { return; }
    [["kernel", ["kernel", "weight"], "Weights"], ["bias", ["bias"], "Biases"]].forEach(function (w) {
      var t = find(inspected, w[1]), h = t ? hists[t.key] : null;
      if (!h) { return; }
      NNT.dist.select($("heat-" + w[0]), epoch);
      NNT.dist.histogram($("hist-" + w[0]), h, h.hist, epoch, w[2]);
    });
  }
  function lineChart(el, list, stat, opts) {
    if (!list.length) { NNT.empty(el, opts.empty); return; }
    var traces = [];
    list.forEach(function (t, i) {
      var color = NNT.COLORS[i % NNT.COLORS.length], name = seriesName(t);
      var tr = { name: name, x: t.epochs, y: t.stats[stat], type: "scatter", mode: "lines", line: { color: color, width: 2 },
                 hovertemplate: "%{y:.3g}<extra>" + name + "</extra>" };
      if (opts.errorStat) { tr.error_y = { type: "data", array: t.stats[opts.errorStat], visible: true, thickness: 1, width: 0, color: color }; }
      traces.push(tr);
      var xs = [], ys = [], texts = [];
      t.epochs.forEach(function (ep, k) {
        if (t.flags[k] && t.flags[k].length) { xs.push(ep); ys.push(t.stats[stat][k]); texts.push(t.flags[k].map(function (f) { return FLAG_TEXT[f] || f; }).join(", ")); }
      });
      if (xs.length) {
        traces.push({ name: name + " flagged", x: xs, y: ys, text: texts, type: "scatter", mode: "markers", showlegend: false,
                      marker: { color: "#dc2626", size: 9, symbol: "x" }, hovertemplate: "%{text}<extra>" + name + "</extra>" });
      }
    });
    var yaxis = { gridcolor: "#e2e8f0", zeroline: false, automargin: true, type: opts.log ? "log" : "linear", title: { text: opts.ytitle || "" } };
    if (opts.range) { yaxis.range = opts.range; }
    NNT.plot(el, traces, NNT.layout({ yaxis: yaxis, hovermode: "closest" }));
  }
  // Lines while they can be told apart; beyond MANY layers one row per layer, colour = value.
  function overview(id, list, stat, opts) {
    var el = $(id);
    if (list.length <= MANY) { lineChart(el, list, stat, opts); return; }
    NNT.dist.grid(el, list, stat, { name: seriesName, log: opts.log, ctitle: opts.log ? "log10 " + opts.ytitle : opts.ytitle,
                                    zmin: opts.range ? Math.max(opts.range[0], -1) : undefined, zmax: opts.range ? Math.min(opts.range[1], 1) : undefined,
                                    colorscale: stat === "cosine_prev" ? "RdBu" : "Viridis" });
  }
  function drawOverview() {
    var shown = tensors.filter(function (t) { return shows(t.layer_name); });
    var grads = shown.filter(function (t) { return t.kind === "gradient"; });
    var acts = shown.filter(function (t) { return t.kind === "activation"; });
    var noGrad = "No gradients recorded (collect.gradients is off, or no epoch logged yet).";
    var noAct = "No activations recorded (collect.activations is off, or no epoch logged yet).";
    enqueue(function () { overview("grad-norm", grads, "norm", { log: true, ytitle: "L2 norm", empty: noGrad }); });
    enqueue(function () { overview("grad-cos", grads, "cosine_prev", { range: [-1.05, 1.05], ytitle: "cosine", empty: noGrad }); });
    enqueue(function () { overview("act-mean", acts, "mean", { errorStat: "std", ytitle: "mean", empty: noAct }); });
    enqueue(function () { overview("act-zero", acts, "zero_fraction", { range: [-0.02, 1.02], ytitle: "fraction of zeros", empty: noAct }); });
  }
  function drawHealth() {
    var box = $("health"), items = [];
    box.innerHTML = "";
    if (!tensors.length) { return; }
    tensors.forEach(function (t) {
      var byFlag = flagsOf([t]);
      Object.keys(byFlag).forEach(function (f) { items.push(t.layer_name + " " + t.kind + ": " + flagText(f, byFlag[f]) + (byFlag[f].length > 1 ? " (" + byFlag[f].length + ")" : "")); });
    });
    var p = document.createElement("p");
    if (!items.length) {
      p.className = "health-ok"; p.textContent = "Healthy: no vanishing or exploding gradients, dead units or non-finite values flagged.";
      box.appendChild(p); return;
    }
    p.className = "health-bad"; p.textContent = "Health flags (" + items.length + ")";
    var ul = document.createElement("ul"); ul.className = "health-list";
    items.slice(0, 12).forEach(function (text) { var li = document.createElement("li"); li.textContent = text; ul.appendChild(li); });
    if (items.length > 12) { var more = document.createElement("li"); more.textContent = "… and " + (items.length - 12) + " more: tick “only flagged layers”"; ul.appendChild(more); }
    box.appendChild(p); box.appendChild(ul);
  }
  // The 3-D scatter (WebGL: a long first draw) waits until it is scrolled into view.
  var scatterBusy = false, scatterWanted = false, scatterSeen = false;
  new IntersectionObserver(function (entries) {
    scatterSeen = entries[entries.length - 1].isIntersecting;
    if (scatterSeen && scatterWanted) { scatterWanted = false; enqueue(drawScatter); }
  }, { rootMargin: "100px 0px" }).observe($("scatter3d"));
  function drawScatter() {
    var key = $("scatter-variable").value, el = $("scatter3d"), note = $("scatter-note");
    if (!key) { NNT.empty(el, "Choose a layer with recorded weights."); return; }
    if (scatterBusy) { return; }
    scatterBusy = true;
    track(NNT.api("GET", TENSORS + "/values?key=" + encodeURIComponent(key) + "&max_values=2000&max_epochs=40"))
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
    var sig = tensors.map(function (t) { return t.key; }).join("|");
    group();
    state.layers = layerOrder.length;
    $("layers-empty").classList.toggle("hidden", tensors.length > 0);
    drawHealth();
    if (sig !== built) { built = sig; buildCards(); } else { restale(); }
    applyFilter();
    loaded = true;
    if (layerOrder.length) { drawLayer(); settle(); return; }
    seen = true; settle();
    var badge = $("sim-status"), status = badge ? badge.textContent.trim() : "";
    var ended = ["failed", "stopped", "finished", "deleted"].indexOf(status) >= 0;
    var none = ended ? "No weights were recorded: the run " + status + " before its first logged epoch."
                     : "Waiting for the first recorded weights…";
    ["heat-kernel", "heat-bias", "scatter3d"].forEach(function (id) { NNT.empty($(id), none); });
    ["hist-kernel", "hist-bias"].forEach(function (id) { $(id).classList.add("hidden"); });
  }
  function loadTensors() {
    if (loading) { stale = true; return; }
    loading = true; stale = false;
    // Statistics of every layer first (small); histograms follow per layer, as charts need them.
    track(NNT.api("GET", TENSORS + (EAGER ? "" : "?histograms=false"))).then(function (data) {
      tensors = data; hists = {}; generation++;
      if (EAGER) { data.forEach(function (t) { hists[t.key] = t; }); }
      drawTensors();
    }).catch(function (err) {
      NNT.empty($("heat-kernel"), "Could not load layer data: " + err.message);
    }).then(function () { loading = false; if (stale && NNT.tabs.visible("graphs")) { loadTensors(); } });
  }
  // Tensors travel on their own topic and land shortly after the epoch's metrics.
  var refresh = NNT.debounce(loadTensors, 3000);
  function scheduleTensors() { if (NNT.tabs.visible("graphs")) { refresh(); } else { stale = true; } }

  // A filter that hides the inspected layer moves the inspector to the first one it shows.
  function followSelect() { if ($("layer-select").value !== inspected) { drawLayer(); } }
  var refilter = NNT.debounce(function () { filterText = $("layer-filter").value.trim().toLowerCase(); applyFilter(); followSelect(); }, 200);
  $("layer-filter").addEventListener("input", refilter);
  $("layer-flagged").addEventListener("change", function () { flaggedOnly = this.checked; applyFilter(); followSelect(); });
  document.querySelectorAll("#dist-view [data-view]").forEach(function (b) {
    b.addEventListener("click", function () {
      view = b.getAttribute("data-view");
      document.querySelectorAll("#dist-view [data-view]").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      drawInspector();
      restale();
    });
  });
  $("epoch-slider").addEventListener("input", function () { selectEpoch(true); });
  $("layer-select").addEventListener("change", drawLayer);
  $("scatter-variable").addEventListener("change", drawScatter);
  NNT.tabs.on("graphs", function (first) {
    if (first) { rendered = true; drawCurves(); loadTensors(); } else if (stale) { loadTensors(); }
  });
})();
