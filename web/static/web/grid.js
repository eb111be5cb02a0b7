// Grid views of one experiment's or tag's runs, from GET /api/simulations (hparams + metrics):
// parallel coordinates drawn as SVG (one <g class="pc-run"> per run, so hovering and clicking
// a line are plain DOM events; Plotly's parcoords has no click), a hyperparameter × metric
// scatter and a two-hyperparameter heatmap (Plotly). Failed runs are grey; runs without a value
// sit on an "n/a" line and are listed, never dropped.
(function () {
  "use strict";
  var root = document.getElementById("grid-root");
  if (!root) { return; }
  var SVG = "http://www.w3.org/2000/svg";
  var PAGE = 1000, MAX_RUNS = 5000, LIST_MAX = 20;
  var HP_ORDER = ["optimizer", "loss", "learning_rate", "fold", "batch_size", "epochs"];
  var HP_LABELS = { optimizer: "optimizer", loss: "loss", learning_rate: "learning rate", fold: "fold",
                    batch_size: "batch size", epochs: "epochs" };
  var PREFERRED = ["val_accuracy", "accuracy", "val_loss", "loss"];
  var VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                 "#b5de2b", "#fde725"];
  var GREY = "#b8c2d0";
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#334155" };
  var state = { runs: [], total: 0, keys: [], metric: "", agg: "best", x: "", y2: "" };
  function $(id) { return document.getElementById(id); }

  // ---- data ----
  function fetchPage(offset) {
    var url = root.getAttribute("data-api") + "&limit=" + PAGE + "&offset=" + offset;
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (resp) {
      if (!resp.ok) { throw new Error("the runs could not be read (HTTP " + resp.status + ")"); }
      var total = parseInt(resp.headers.get("X-Total-Count") || "0", 10);
      return resp.json().then(function (items) { return { items: items, total: total }; });
    });
  }
  function loadAll(offset, acc) {
    return fetchPage(offset).then(function (page) {
      acc = acc.concat(page.items);
      state.total = page.total || acc.length;
      var more = page.items.length === PAGE && acc.length < Math.min(state.total, MAX_RUNS);
      return more ? loadAll(offset + PAGE, acc) : acc;
    });
  }
  function runOf(item) {
    return { id: item.id, name: item.name || String(item.id).slice(0, 8), status: item.status,
             message: item.message || "", hp: item.hparams || {}, metrics: item.metrics || {} };
  }
  function present(v) { return v !== null && v !== undefined && v !== ""; }
  function value(run) {
    var m = run.metrics[state.metric], v = m ? m[state.agg] : null;
    return typeof v === "number" && isFinite(v) ? v : null;
  }
  function coloured(run) { return run.status !== "failed" && value(run) !== null; }
  function goal() {
    for (var i = 0; i < state.runs.length; i++) {
      var m = state.runs[i].metrics[state.metric];
      if (m && m.goal) { return m.goal; }
    }
    return /loss|error|mse|mae/i.test(state.metric) ? "min" : "max";
  }
  function uniq(list) {
    var seen = {}, out = [];
    list.forEach(function (v) { var k = JSON.stringify(v); if (!seen[k]) { seen[k] = true; out.push(v); } });
    return out;
  }
  function hpKeys(runs) {
    var seen = {};
    runs.forEach(function (r) { Object.keys(r.hp).forEach(function (k) { if (present(r.hp[k])) { seen[k] = true; } }); });
    var extra = Object.keys(seen).filter(function (k) { return HP_ORDER.indexOf(k) < 0; }).sort();
    return HP_ORDER.filter(function (k) { return seen[k]; }).concat(extra);
  }
  function varies(key) { return uniq(state.runs.map(function (r) { return present(r.hp[key]) ? r.hp[key] : null; })).length > 1; }
  function metricNames(runs) {
    var names = uniq([].concat.apply([], runs.map(function (r) { return Object.keys(r.metrics); }))).sort();
    return PREFERRED.filter(function (n) { return names.indexOf(n) >= 0; })
      .concat(names.filter(function (n) { return PREFERRED.indexOf(n) < 0; }));
  }
  function label(key) { return HP_LABELS[key] || key.replace(/_/g, " "); }
  function metricLabel() { return state.metric ? state.metric + " (" + state.agg + ")" : "metric"; }

  // ---- formatting and colour ----
  function fmt(v) {
    if (typeof v !== "number") { return present(v) ? String(v) : "n/a"; }
    if (Number.isInteger(v)) { return String(v); }
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) { return v.toExponential(1).replace(".0e", "e").replace("e-", "e−"); }
    return String(parseFloat(v.toPrecision(4)));
  }
  function viridis(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    var i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
    var a = parseInt(VIRIDIS[i].slice(1), 16), b = parseInt(VIRIDIS[i + 1].slice(1), 16);
    var mix = [16, 8, 0].map(function (s) { return Math.round(((a >> s) & 255) * (1 - f) + ((b >> s) & 255) * f); });
    return "rgb(" + mix.join(",") + ")";
  }
  function colourScale() {  // t = 1 is always the best value, whichever way the metric's goal points
    var vals = state.runs.filter(coloured).map(value);
    if (!vals.length) { return null; }
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals), min = goal() === "min";
    return { lo: lo, hi: hi, best: min ? lo : hi, worst: min ? hi : lo,
             t: function (v) { var t = hi === lo ? 1 : (v - lo) / (hi - lo); return min ? 1 - t : t; } };
  }
  function niceTicks(lo, hi, n) {
    var raw = (hi - lo) / Math.max(n - 1, 1), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (s) { return s * mag; }).sort(function (a, b) {  // nearest n ticks
      return Math.abs((hi - lo) / a - (n - 1)) - Math.abs((hi - lo) / b - (n - 1));
    })[0];
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) { out.push(parseFloat(v.toPrecision(12))); }
    return out;
  }

  // One axis of values aligned with the runs: categorical (strings), log (learning rate) or
  // linear; ticks at each value of a grid's few (a hyperparameter), or round ones (a metric).
  function makeAxis(key, title, values, log, round) {
    var known = values.filter(present), axis = { key: key, title: title, values: values };
    axis.missing = known.length < values.length;
    if (!known.length) { axis.ticks = []; axis.pos = function () { return null; }; return axis; }
    if (known.some(function (v) { return typeof v !== "number"; })) {
      var cats = uniq(known.map(String)).sort(function (a, b) { return a.localeCompare(b, undefined, { numeric: true }); });
      var at = function (i) { return cats.length === 1 ? 0.5 : i / (cats.length - 1); };
      axis.categorical = true; axis.cats = cats;
      axis.ticks = cats.map(function (c, i) { return { pos: at(i), text: c }; });
      axis.pos = function (v) { return present(v) ? at(cats.indexOf(String(v))) : null; };
      return axis;
    }
    axis.log = log && known.every(function (v) { return v > 0; });
    var f = axis.log ? Math.log10 : function (v) { return v; };
    var lo = Math.min.apply(null, known.map(f)), hi = Math.max.apply(null, known.map(f));
    axis.pos = function (v) { return present(v) ? (hi === lo ? 0.5 : (f(v) - lo) / (hi - lo)) : null; };
    var distinct = uniq(known).sort(function (a, b) { return a - b; }), ticks = distinct;
    if (distinct.length > 8 || (round && hi > lo)) {
      ticks = axis.log ? niceTicks(Math.ceil(lo), Math.floor(hi), 6).filter(Number.isInteger).map(function (k) { return Math.pow(10, k); })
                       : niceTicks(lo, hi, 6);
      if (ticks.length < 2) { ticks = [distinct[0], distinct[distinct.length - 1]]; }
    }
    axis.ticks = ticks.map(function (v) { return { pos: axis.pos(v), text: fmt(v) }; });
    axis.few = distinct.length <= 8 ? distinct : null;
    return axis;
  }

  // ---- parallel coordinates (SVG) ----
  function node(tag, attrs, parent, text) {
    var el = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    if (parent) { parent.appendChild(el); }
    return el;
  }
  function short(text) { return text.length > 22 ? text.slice(0, 21) + "…" : text; }

  function drawAxis(svg, a, y, naY) {
    var g = node("g", { "class": "pc-axis" }, svg);
    node("line", { x1: a.x, x2: a.x, y1: y(1), y2: y(0) }, g);
    node("text", { x: a.x, y: y(1) - 16, "class": "pc-title", "text-anchor": "middle" }, g, a.title + (a.log ? " (log)" : ""));
    a.ticks.forEach(function (t) {
      node("line", { x1: a.x - 4, x2: a.x, y1: y(t.pos), y2: y(t.pos) }, g);
      var label = node("text", { x: a.x + 6, y: y(t.pos) + 4, "class": "pc-tick" }, g, short(t.text));
      if (t.text.length > 22) { node("title", {}, label, t.text); }
    });
    if (a.missing) { node("text", { x: a.x + 6, y: naY + 4, "class": "pc-tick pc-na" }, g, "n/a"); }
  }

  function drawColourBar(svg, scale, x, top, bottom) {
    var defs = node("defs", {}, svg), grad = node("linearGradient", { id: "pc-grad", x1: 0, x2: 0, y1: 1, y2: 0 }, defs);
    VIRIDIS.forEach(function (c, i) { node("stop", { offset: (100 * i / (VIRIDIS.length - 1)) + "%", "stop-color": c }, grad); });
    var g = node("g", { "class": "pc-colourbar", id: "grid-colourbar" }, svg);
    node("rect", { x: x, y: top, width: 12, height: bottom - top, fill: "url(#pc-grad)", rx: 2 }, g);
    node("text", { x: x + 16, y: top + 8, "class": "pc-tick" }, g, fmt(scale.best));
    node("text", { x: x + 16, y: top + 22, "class": "pc-tick pc-note" }, g, "best");
    node("text", { x: x + 16, y: bottom - 14, "class": "pc-tick pc-note" }, g, "worst");
    node("text", { x: x + 16, y: bottom, "class": "pc-tick" }, g, fmt(scale.worst));
  }

  function drawParcoords() {
    var box = $("grid-parcoords");
    box.innerHTML = "";
    if (!state.keys.length) {
      return placeholder(box, "These runs record no hyperparameters (optimizer, loss, learning rate, fold, batch size), so there is nothing to put on the axes.");
    }
    var runs = state.runs, scale = colourScale();
    var keys = state.keys.filter(varies);
    if (!keys.length) { keys = state.keys; }
    var axes = keys.map(function (k) { return makeAxis(k, label(k), runs.map(function (r) { return r.hp[k]; }), k === "learning_rate"); });
    axes.push(makeAxis("metric", metricLabel(), runs.map(value), false, true));
    var W = Math.max(box.clientWidth || 0, 560), H = 430, m = { l: 60, r: 150, t: 44, b: 40 };
    var plotH = H - m.t - m.b, naY = m.t + plotH + 24, step = (W - m.l - m.r) / Math.max(axes.length - 1, 1);
    var y = function (p) { return p === null ? naY : m.t + (1 - p) * plotH; };
    axes.forEach(function (a, i) { a.x = m.l + i * step; });
    var svg = node("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, "class": "pc-svg",
                            "aria-label": "Parallel coordinates: one line per run" }, box);
    // Thousands of lines at full opacity are one solid block: fade them as the count grows.
    svg.style.setProperty("--pc-opacity", runs.length > 400 ? 0.3 : runs.length > 100 ? 0.55 : 0.85);
    var lines = node("g", { "class": "pc-runs" }, svg);
    axes.forEach(function (a) { drawAxis(svg, a, y, naY); });
    var overlay = node("g", { "class": "pc-overlay" }, svg);
    if (scale) { drawColourBar(svg, scale, W - m.r + 84, m.t, m.t + plotH); }
    var order = runs.map(function (r, i) { return i; }).sort(function (i, j) {  // grey underneath, best on top
      var a = coloured(runs[i]) ? scale.t(value(runs[i])) : -1, b = coloured(runs[j]) ? scale.t(value(runs[j])) : -1;
      return a - b;
    });
    order.forEach(function (i) {
      var run = runs[i], pts = axes.map(function (a) { return [a.x, y(a.pos(a.values[i]))]; });
      var d = "M" + pts.map(function (p) { return p[0].toFixed(1) + " " + p[1].toFixed(1); }).join(" L");
      var colour = coloured(run) ? viridis(scale.t(value(run))) : GREY;
      var g = node("g", { "class": "pc-run" + (coloured(run) ? "" : " pc-grey"), "data-id": run.id, tabindex: 0,
                          role: "link", "aria-label": run.name }, lines);
      node("path", { d: d, "class": "pc-hit" }, g);
      node("path", { d: d, "class": "pc-line", stroke: colour }, g);
      g.addEventListener("mouseenter", function (ev) { highlight(svg, overlay, i, pts, colour, axes, ev); });
      g.addEventListener("mousemove", function (ev) { placeTip(ev); });
      g.addEventListener("mouseleave", function () { unhighlight(svg, overlay); });
      g.addEventListener("focus", function () { highlight(svg, overlay, i, pts, colour, axes, null); });
      g.addEventListener("blur", function () { unhighlight(svg, overlay); });
      g.addEventListener("click", function () { openRun(run.id); });
      g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { openRun(run.id); } });
    });
  }

  function highlight(svg, overlay, i, pts, colour, axes, ev) {
    var run = state.runs[i];
    svg.classList.add("pc-hovering");
    overlay.innerHTML = "";
    var d = "M" + pts.map(function (p) { return p.join(" "); }).join(" L");
    node("path", { d: d, "class": "pc-hl", stroke: colour === GREY ? "#64748b" : colour }, overlay);
    pts.forEach(function (p) { node("circle", { cx: p[0], cy: p[1], r: 3.5, "class": "pc-dot" }, overlay); });
    var tip = $("grid-tip");
    tip.innerHTML = "";
    var head = document.createElement("div");
    head.className = "grid-tip-head";
    var name = document.createElement("b"); name.textContent = run.name; head.appendChild(name);
    var badge = document.createElement("span"); badge.className = "badge status-" + run.status; badge.textContent = run.status;
    head.appendChild(badge); tip.appendChild(head);
    var dl = document.createElement("dl");
    axes.forEach(function (a) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = a.title; dd.textContent = fmt(a.values[i]);
      dl.appendChild(dt); dl.appendChild(dd);
    });
    tip.appendChild(dl);
    tip.classList.remove("hidden");
    placeTip(ev || { target: svg, clientX: svg.getBoundingClientRect().left + pts[pts.length - 1][0],
                     clientY: svg.getBoundingClientRect().top + pts[pts.length - 1][1] });
  }
  function placeTip(ev) {
    var tip = $("grid-tip"), panel = tip.parentNode.getBoundingClientRect();
    var x = ev.clientX - panel.left + 16, yy = ev.clientY - panel.top + 12;
    if (x + tip.offsetWidth > panel.width - 8) { x = ev.clientX - panel.left - tip.offsetWidth - 16; }
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, yy) + "px";
  }
  function unhighlight(svg, overlay) {
    svg.classList.remove("pc-hovering");
    overlay.innerHTML = "";
    $("grid-tip").classList.add("hidden");
  }
  function openRun(id) { window.location.href = "/simulations/" + encodeURIComponent(id) + "/"; }
  function placeholder(box, text) {
    if (box._fullLayout && window.Plotly) { Plotly.purge(box); }
    box.innerHTML = "";
    var p = document.createElement("p");
    p.className = "chart-placeholder muted"; p.textContent = text; box.appendChild(p);
  }

  // ---- scatter and heatmap (Plotly) ----
  function esc(text) { return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  function plotLayout(extra) {
    var base = { margin: { l: 64, r: 16, t: 10, b: 56 }, height: 400, paper_bgcolor: "rgba(0,0,0,0)",
                 plot_bgcolor: "rgba(0,0,0,0)", font: FONT, hovermode: "closest", showlegend: true,
                 legend: { orientation: "h", y: -0.2 } };
    Object.keys(extra).forEach(function (k) { base[k] = extra[k]; });
    return base;
  }
  function plot(box, traces, layout) {
    if (!box._fullLayout) { box.innerHTML = ""; }
    return Plotly.react(box, traces, layout, { responsive: true, displaylogo: false,
                                               modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  }

  function drawScatter() {
    var box = $("grid-scatter"), key = state.x;
    $("grid-cell").classList.add("hidden");
    if (!key) { return placeholder(box, "No hyperparameter to put on the x axis."); }
    if (!state.metric) { return placeholder(box, "No run has logged a metric yet: the scatter appears with the first logged epoch."); }
    if (state.y2 && state.y2 !== key) { return drawHeatmap(box, key, state.y2); }
    $("grid-scatter-title").textContent = label(key) + " × " + metricLabel();
    var axis = makeAxis(key, label(key), state.runs.map(function (r) { return r.hp[key]; }), key === "learning_rate");
    var scale = colourScale(), groups = { ok: [], failed: [] }, seen = {};
    state.runs.forEach(function (run) {
      var v = value(run), raw = run.hp[key];
      if (v === null || (!present(raw) && !axis.categorical)) { return; }
      var x = raw;
      if (axis.categorical) {  // categories sit at 0..n-1, runs of one category spread a little
        var c = present(raw) ? axis.cats.indexOf(String(raw)) : axis.cats.length, k = seen[c] = (seen[c] || 0) + 1;
        x = c + (((k * 0.618034) % 1) - 0.5) * 0.3;
      }
      groups[run.status === "failed" ? "failed" : "ok"].push({ run: run, x: x, y: v });
    });
    var hover = "<b>%{text}</b><br>" + esc(label(key)) + ": %{customdata[1]}<br>" + esc(metricLabel()) + ": %{y:.4g}<extra></extra>";
    var trace = function (pts, name, marker) {
      return { type: "scatter", mode: "markers", name: name, x: pts.map(function (p) { return p.x; }),
               y: pts.map(function (p) { return p.y; }), text: pts.map(function (p) { return esc(p.run.name); }),
               customdata: pts.map(function (p) { return [p.run.id, esc(fmt(p.run.hp[key]))]; }),
               hovertemplate: hover, marker: marker };
    };
    var traces = [trace(groups.ok, "runs", { size: 11, line: { width: 1, color: "#fff" },
      color: groups.ok.map(function (p) { return viridis(scale.t(p.y)); }) })];
    if (groups.failed.length) { traces.push(trace(groups.failed, "failed", { size: 10, symbol: "x", color: GREY })); }
    var cats = axis.categorical ? axis.cats.concat(axis.missing ? ["n/a"] : []) : null;
    var xaxis = { title: { text: label(key) }, gridcolor: "#e2e8f0", zeroline: false };
    if (cats) { xaxis.tickvals = cats.map(function (c, i) { return i; }); xaxis.ticktext = cats.map(esc); xaxis.range = [-0.5, cats.length - 0.5]; }
    if (axis.log) { xaxis.type = "log"; }
    if (axis.few) {  // a grid's few values, labelled as they were set (Plotly's own are 2, 3, 5…)
      xaxis.tickvals = axis.few; xaxis.ticktext = axis.few.map(fmt);
    }
    plot(box, traces, plotLayout({ xaxis: xaxis, yaxis: { title: { text: metricLabel() }, gridcolor: "#e2e8f0", zeroline: false } }));
    bindClick(box, function (p) { if (p.customdata) { openRun(p.customdata[0]); } });
  }

  function categories(key) {  // the distinct values, in axis order, as the heatmap's labels
    var axis = makeAxis(key, label(key), state.runs.map(function (r) { return r.hp[key]; }), false);
    var list = axis.categorical ? axis.cats.slice() : uniq(state.runs.map(function (r) { return r.hp[key]; })
      .filter(present).sort(function (a, b) { return a - b; }).map(fmt));
    return axis.missing ? list.concat(["n/a"]) : list;
  }
  function drawHeatmap(box, kx, ky) {
    $("grid-scatter-title").textContent = "mean " + metricLabel() + " by " + label(kx) + " × " + label(ky);
    var xs = categories(kx), ys = categories(ky);
    var cell = function (run, key) { return present(run.hp[key]) ? fmt(run.hp[key]) : "n/a"; };
    var runsIn = ys.map(function () { return xs.map(function () { return []; }); });
    state.runs.forEach(function (run) { runsIn[ys.indexOf(cell(run, ky))][xs.indexOf(cell(run, kx))].push(run); });
    var z = runsIn.map(function (row) { return row.map(function (rs) {
      var vals = rs.filter(coloured).map(value);
      return vals.length ? vals.reduce(function (a, b) { return a + b; }, 0) / vals.length : null;
    }); });
    var notes = runsIn.map(function (row) { return row.map(function (rs) {
      var n = rs.filter(coloured).length, left = rs.length - n;
      return n + " run" + (n === 1 ? "" : "s") + " in the mean" + (left ? " · " + left + " failed or without a value, not counted" : "");
    }); });
    var trace = { type: "heatmap", x: xs.map(esc), y: ys.map(esc), z: z, customdata: notes, colorscale: "Viridis", reversescale: goal() === "min",
                  xgap: 2, ygap: 2, hoverongaps: false, texttemplate: "%{z:.3g}",
                  colorbar: { title: { text: esc(metricLabel()), side: "right" }, thickness: 12 },
                  hovertemplate: esc(label(kx)) + ": %{x}<br>" + esc(label(ky)) + ": %{y}<br>mean " + esc(metricLabel()) +
                                 ": %{z:.4g}<br>%{customdata}<extra></extra>" };
    var gaps = [];  // cells whose runs all failed or have no value: say so rather than leave a hole
    runsIn.forEach(function (row, j) { row.forEach(function (rs, i) {
      // by index: a category named "0.1" would be read as the position 0.1
      if (rs.length && z[j][i] === null) { gaps.push({ x: i, y: j, showarrow: false, font: { size: 11, color: "#64748b" },
                                                      text: rs.length + " run" + (rs.length === 1 ? "" : "s") + ", none counted" }); }
    }); });
    plot(box, [trace], plotLayout({ showlegend: false, annotations: gaps, xaxis: { type: "category", title: { text: label(kx) } },
                                    yaxis: { type: "category", title: { text: label(ky) }, automargin: true } }));
    bindClick(box, function (p) {  // the labels Plotly drew are escaped: find the cell by its place
      var j = ys.map(esc).indexOf(p.y), i = xs.map(esc).indexOf(p.x);
      if (i >= 0 && j >= 0) { showCell(kx, xs[i], ky, ys[j], runsIn[j][i]); }
    });
  }
  function bindClick(box, handler) {
    if (box.removeAllListeners) { box.removeAllListeners("plotly_click"); }
    box.on("plotly_click", function (ev) { if (ev && ev.points && ev.points[0]) { handler(ev.points[0]); } });
  }
  function showCell(kx, vx, ky, vy, runs) {  // a heatmap cell is several runs: list them to open one
    var box = $("grid-cell");
    box.innerHTML = "";
    var head = document.createElement("p");
    head.textContent = label(kx) + " " + vx + " · " + label(ky) + " " + vy + ": " + runs.length + " run" + (runs.length === 1 ? "" : "s");
    box.appendChild(head);
    box.appendChild(runList(runs, function (run) { return coloured(run) ? fmt(value(run)) : reason(run); }));
    box.classList.remove("hidden");
  }

  // ---- runs left out of the colour scale ----
  function reason(run) {
    if (run.status === "failed") { return "failed" + (run.message ? ": " + run.message : ""); }
    return "no " + state.metric + (run.status === "finished" ? " logged" : " yet (" + run.status + ")");
  }
  function runList(runs, note) {  // the first LIST_MAX, then a button that shows the rest
    var ul = document.createElement("ul");
    ul.className = "grid-left-out";
    runs.forEach(function (run, i) {
      if (i === LIST_MAX) {
        var more = document.createElement("li"), button = document.createElement("button");
        more.className = "grid-more";
        button.type = "button"; button.className = "linkbutton";
        button.textContent = "Show all " + runs.length;
        button.addEventListener("click", function () { ul.classList.remove("grid-folded"); more.remove(); });
        more.appendChild(button); ul.appendChild(more); ul.classList.add("grid-folded");
      }
      var li = document.createElement("li"), a = document.createElement("a"), span = document.createElement("span");
      a.href = "/simulations/" + encodeURIComponent(run.id) + "/"; a.textContent = run.name;
      span.className = "muted"; span.textContent = " · " + note(run);
      if (i >= LIST_MAX) { li.className = "grid-extra"; }
      li.appendChild(a); li.appendChild(span); ul.appendChild(li);
    });
    return ul;
  }
  function drawLeftOut() {
    // With no metric logged at all, every run lacks a value: list only the failed ones then.
    var left = state.runs.filter(function (r) { return state.metric ? !coloured(r) : r.status === "failed"; });
    var panel = $("grid-left-out"), list = runList(left, reason);
    list.id = "grid-left-out-list";
    $("grid-left-out-list").replaceWith(list);
    panel.classList.toggle("hidden", !left.length);
    var failed = left.filter(function (r) { return r.status === "failed"; }).length, noValue = left.length - failed;
    var parts = [state.runs.length + " run" + (state.runs.length === 1 ? "" : "s")];
    if (state.total > state.runs.length) { parts[0] = "the newest " + state.runs.length + " of " + state.total + " runs"; }
    if (state.metric) { parts.push((state.runs.length - left.length) + " coloured by " + metricLabel()); }
    else { parts.push("no metric logged yet"); }
    if (failed) { parts.push(failed + " failed"); }
    if (noValue && state.metric) { parts.push(noValue + " without a value"); }
    $("grid-status").textContent = parts.join(" · ");
  }

  // ---- controls ----
  function options(select, values, labels, chosen) {
    var keep = select.querySelector("option[value='']");
    select.innerHTML = "";
    if (keep) { select.appendChild(keep); }
    values.forEach(function (v, i) {
      var o = document.createElement("option");
      o.value = v; o.textContent = labels[i]; o.selected = v === chosen; select.appendChild(o);
    });
  }
  function remember() {
    var params = new URLSearchParams(window.location.search);
    [["metric", state.metric], ["agg", state.agg], ["x", state.x], ["by", state.y2]].forEach(function (p) {
      if (p[1]) { params.set(p[0], p[1]); } else { params.delete(p[0]); }
    });
    history.replaceState(null, "", "?" + params.toString());
  }
  function redraw() {
    drawParcoords(); drawScatter(); drawLeftOut();
  }
  function setUp(items) {
    var params = new URLSearchParams(window.location.search);
    state.runs = items.map(runOf);
    state.keys = hpKeys(state.runs);
    var metrics = metricNames(state.runs), ordered = state.keys.filter(varies).concat(state.keys.filter(function (k) { return !varies(k); }));
    var pick = function (name, list, fallback) { var v = params.get(name); return list.indexOf(v) >= 0 ? v : fallback; };
    state.metric = pick("metric", metrics, metrics[0] || "");
    state.agg = pick("agg", ["best", "last"], "best");
    state.x = pick("x", ordered, ordered[0] || "");
    state.y2 = pick("by", ordered, "");
    options($("grid-metric"), metrics, metrics, state.metric);
    $("grid-metric").disabled = !metrics.length;
    if (!metrics.length) { options($("grid-metric"), [""], ["no metric logged yet"], ""); }
    $("grid-agg").value = state.agg;
    options($("grid-x"), ordered, ordered.map(label), state.x);
    options($("grid-y2"), ordered, ordered.map(label), state.y2);
    [["grid-metric", "metric"], ["grid-agg", "agg"], ["grid-x", "x"], ["grid-y2", "y2"]].forEach(function (c) {
      $(c[0]).addEventListener("change", function () { state[c[1]] = $(c[0]).value; remember(); redraw(); });
    });
    redraw();
    root.setAttribute("data-ready", "1");  // the runs are drawn (tests and scripts wait on this)
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { if (state.runs.length) { drawParcoords(); } }, 150);
  });
  loadAll(0, []).then(setUp).catch(function (err) {
    $("grid-status").textContent = "The runs could not be drawn: " + (err && err.message ? err.message : err);
    $("grid-status").classList.add("error");
    root.setAttribute("data-ready", "error");
  });
})();
