// NNTChart: chart maths and controls shared by every Plotly page (no dependency but Plotly).
//
// Include after plotly.min.js; it defines window.NNTChart:
//   ema(values, weight, state?)   TensorBoard's debiased exponential moving average. `weight`
//                                 0..0.99 (0: the values back); null/NaN pass through and do not
//                                 move the average; `state` ({last, n}), when given, carries the
//                                 average on from a previous call (live points) and is updated.
//   smoothTraces(traces, weight)  each scatter trace becomes a faint raw line (same name, no
//                                 legend entry) under its smoothed copy (meta.smoothed = true).
//   logTicks(min, max)            {tickvals, ticktext} for a log axis: decades (1e-4 … or 0.001 …)
//                                 with 2 and 5 in between over short spans, whole numbers not
//                                 Plotly's "2 5 2 5" fragments.
//   tick(v)                       one tick label: 0.001, 0.25, 120, 1e-5, 2e+6.
//   timeUnit(maxSeconds)          {div, label} that keeps wall-time ticks readable (s, min, h).
//   settings.get() / set(patch) / onChange(fn)
//                                 the page's chart controls, remembered in localStorage:
//                                 {smoothing: 0..0.99, x: "epoch"|"step"|"time", log: {key: bool}}.
//   controls(container)           draws the smoothing slider and x-axis choice bound to settings.
//   logToggle(el, key, label, id) a "log y" checkbox remembered under `key` ("<chart id>:yaxis");
//                                 a change calls every settings.onChange listener to redraw.
//   applyControls(el, layout, key, axes)
//                                 the remembered log/linear state of `axes` put on a layout before
//                                 Plotly.react, plus a uirevision (per x-axis choice) so a user's
//                                 zoom survives redraws and live points.
//   autoY(el)                     after a zoom on x, each y axis the user did not zoom fits the
//                                 visible points; a double-click gives the full range back.
//   afterUpdate(el)               call after Plotly.react / extendTraces: keeps a zoomed chart's
//                                 y fitted and the log ticks right for what it shows.
//   legend(extra)                 a horizontal legend above the plot area (never over a title).
//   marks(items, xOf)             {shapes, annotations} for a layout: a dashed vertical line at each
//                                 item's x (xOf(item) -> number | null: null draws nothing) with a
//                                 short label at the top; item: {label, severity: "fatal"|other,
//                                 name} (name goes to the shape's name, for tests and hovers).
//
// Typical use (overlay.js):
//   var layout = NNTChart.applyControls(el, NNT.layout({legend: NNTChart.legend()}), el.id, ["yaxis"]);
//   Plotly.react(el, NNTChart.smoothTraces(traces, NNTChart.settings.get().smoothing), layout)
//     .then(function () { NNTChart.autoY(el); NNTChart.afterUpdate(el); });
//   NNTChart.settings.onChange(redraw);
(function () {
  "use strict";
  var STORE_KEY = "nnt.chart.v1";
  var DEFAULTS = { smoothing: 0, x: "epoch", log: {} };

  // ---- maths ------------------------------------------------------------------------------
  function finite(v) { return typeof v === "number" && isFinite(v); }

  function ema(values, weight, state) {
    var w = Math.max(0, Math.min(0.999, Number(weight) || 0));
    var st = state || { last: 0, n: 0 };
    var out = new Array(values.length);
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (!finite(v)) { out[i] = v; continue; }
      // TensorBoard: the average starts at 0 and is divided by (1 - w^n), so the first points
      // are not pulled towards zero.
      st.last = st.last * w + (1 - w) * v;
      st.n += 1;
      var debias = w === 0 ? 1 : 1 - Math.pow(w, st.n);
      out[i] = st.last / debias;
    }
    return out;
  }

  function faint(color) {
    var m = /^#([0-9a-f]{6})$/i.exec(color || "");
    if (!m) { return color; }
    var n = parseInt(m[1], 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + ",0.28)";
  }

  function copy(obj) { return JSON.parse(JSON.stringify(obj || {})); }

  function smoothTraces(traces, weight) {
    if (!(weight > 0)) { return traces; }
    var out = [];
    traces.forEach(function (t) {
      if ((t.meta && t.meta.smooth === false) || (t.type && t.type !== "scatter")) { out.push(t); return; }
      var group = t.legendgroup || t.name;
      var raw = Object.assign({}, t, { legendgroup: group, showlegend: false, hoverinfo: "skip", fill: "none",
                                       mode: "lines", line: Object.assign(copy(t.line), { color: faint(t.line && t.line.color), width: 1 }),
                                       meta: Object.assign(copy(t.meta), { raw: true }) });
      delete raw.hovertemplate; delete raw.marker;
      var smooth = Object.assign({}, t, { legendgroup: group, y: ema(t.y, weight), mode: "lines",
                                          meta: Object.assign(copy(t.meta), { smoothed: true }) });
      delete smooth.marker;
      if (!t.customdata) {   // the hover tells the smoothed value and the raw one under it
        smooth.customdata = t.y.slice();
        var ht = t.hovertemplate || "%{y:.4g}";
        smooth.hovertemplate = ht.indexOf("<extra>") === -1 ? ht + " (raw %{customdata:.4g})"
                                                           : ht.replace("<extra>", " (raw %{customdata:.4g})<extra>");
      }
      out.push(raw, smooth);
    });
    return out;
  }

  function tick(v) {
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    if (a >= 1e5 || a < 1e-3) {
      var e = Math.floor(Math.log10(a) + 1e-9), m = v / Math.pow(10, e);
      var ms = String(Number(m.toPrecision(2)));
      return (ms === "1" ? "1" : ms === "-1" ? "-1" : ms) + "e" + (e > 0 ? "+" : "") + e;
    }
    return String(Number(v.toPrecision(4)));
  }

  function niceStep(span, count) {
    var raw = span / count, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
  }

  function logTicks(min, max) {
    if (!(min > 0) || !(max > 0)) { return { tickvals: [], ticktext: [] }; }
    if (max < min) { var t = min; min = max; max = t; }
    var lo = Math.log10(min), hi = Math.log10(max), span = hi - lo, vals = [];
    if (span >= 1) {
      var every = Math.max(1, Math.ceil(span / 7));
      var mults = span <= 2.5 ? [1, 2, 5] : [1];
      for (var k = Math.floor(lo); k <= Math.ceil(hi); k++) {
        if (k % every !== 0) { continue; }
        mults.forEach(function (m) { var v = m * Math.pow(10, k); if (v >= min * 0.999 && v <= max * 1.001) { vals.push(v); } });
      }
    }
    if (vals.length < 3) {   // under a decade or two: evenly spaced round numbers read best
      vals = [];
      var step = niceStep(max - min, 4);
      for (var v = Math.ceil(min / step) * step; v <= max * 1.0000001; v += step) {
        if (v > 0) { vals.push(Number(v.toPrecision(12))); }
      }
      if (!vals.length) { vals = [Number(min.toPrecision(3))]; }
    }
    return { tickvals: vals, ticktext: vals.map(tick) };
  }

  function timeUnit(maxSeconds) {
    if (!(maxSeconds > 180)) { return { div: 1, label: "s" }; }
    if (maxSeconds <= 3 * 3600) { return { div: 60, label: "min" }; }
    return { div: 3600, label: "h" };
  }

  // ---- settings ---------------------------------------------------------------------------
  var listeners = [];
  function read() {
    try {
      var s = JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}");
      return { smoothing: finite(s.smoothing) ? Math.max(0, Math.min(0.99, s.smoothing)) : DEFAULTS.smoothing,
               x: ["epoch", "step", "time"].indexOf(s.x) !== -1 ? s.x : DEFAULTS.x,
               log: s.log && typeof s.log === "object" ? s.log : {} };
    } catch (e) { return copy(DEFAULTS); }
  }
  var current = read();
  var settings = {
    get: function () { return copy(current); },
    set: function (patch) {
      var before = current;
      current = Object.assign(copy(current), patch);
      try { window.localStorage.setItem(STORE_KEY, JSON.stringify(current)); } catch (e) { /* private mode: not remembered */ }
      listeners.forEach(function (fn) { fn(copy(current), before); });
    },
    onChange: function (fn) { listeners.push(fn); },
  };

  // ---- page controls ----------------------------------------------------------------------
  function controls(container) {
    if (!container || container.getAttribute("data-ready")) { return; }
    container.setAttribute("data-ready", "1");
    var s = settings.get();
    container.innerHTML =
      '<label class="chart-control" title="Exponential moving average, debiased as in TensorBoard: the raw line stays faint behind">' +
      'Smoothing <input type="range" id="chart-smoothing" min="0" max="0.99" step="0.01" aria-label="Smoothing">' +
      '<output id="chart-smoothing-value" for="chart-smoothing"></output></label>' +
      '<label class="chart-control">x-axis <select id="chart-xaxis" aria-label="x-axis">' +
      '<option value="epoch">epoch</option><option value="step">step (batches)</option>' +
      '<option value="time">wall time</option></select></label>';
    var slider = container.querySelector("#chart-smoothing"), out = container.querySelector("#chart-smoothing-value");
    var select = container.querySelector("#chart-xaxis");
    slider.value = String(s.smoothing); out.textContent = s.smoothing.toFixed(2);
    select.value = s.x;
    var commit = debounce(function () { settings.set({ smoothing: Number(slider.value) }); }, 120);
    slider.addEventListener("input", function () { out.textContent = Number(slider.value).toFixed(2); commit(); });
    select.addEventListener("change", function () { settings.set({ x: select.value }); });
  }

  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // ---- per-chart log toggle ---------------------------------------------------------------
  function isLog(key) { return !!current.log[key]; }

  function logToggle(el, key, label, id) {
    var box = document.createElement("label");
    box.className = "log-toggle";
    box.title = "Logarithmic y-axis";
    var input = document.createElement("input");
    input.type = "checkbox"; input.className = "js-log"; input.setAttribute("data-log-key", key);
    if (id) { input.id = id; }
    input.checked = isLog(key);
    box.appendChild(input);
    box.appendChild(document.createTextNode(" " + (label || "log y")));
    input.addEventListener("change", function () {
      var log = copy(current.log); log[key] = input.checked;
      settings.set({ log: log });
    });
    return box;
  }

  // Every point of the traces on one y axis, optionally within an x range.
  function extent(el, axis, xr) {
    var lo = Infinity, hi = -Infinity, ref = axis === "yaxis" ? "y" : "y" + axis.slice(5);
    var logAxis = el.layout && el.layout[axis] && el.layout[axis].type === "log";
    (el.data || []).forEach(function (t) {
      if ((t.yaxis || "y") !== ref || t.visible === "legendonly" || t.visible === false || !t.y) { return; }
      for (var i = 0; i < t.y.length; i++) {
        var y = t.y[i], x = t.x ? t.x[i] : i;
        if (!finite(y) || (logAxis && y <= 0)) { continue; }
        if (xr && (x < xr[0] || x > xr[1])) { continue; }
        if (y < lo) { lo = y; }
        if (y > hi) { hi = y; }
      }
    });
    return lo <= hi ? [lo, hi] : null;
  }

  function axesOf(el) {
    return Object.keys(el.layout || {}).filter(function (k) { return /^yaxis\d*$/.test(k); });
  }

  function padded(range, log) {
    if (log) {
      var a = Math.log10(range[0]), b = Math.log10(range[1]), p = Math.max((b - a) * 0.06, 0.02);
      return [a - p, b + p];
    }
    var pad = (range[1] - range[0]) * 0.06 || Math.abs(range[0]) * 0.05 || 0.5;
    return [range[0] - pad, range[1] + pad];
  }

  // Readable ticks of each log axis for what it shows (all points, or the zoomed x range).
  function ticksFor(el, xr) {
    var patch = {};
    axesOf(el).forEach(function (axis) {
      if (el.layout[axis].type !== "log") { return; }
      var r = extent(el, axis, xr);
      var t = r ? logTicks(r[0], r[1]) : { tickvals: null, ticktext: null };
      patch[axis + ".tickmode"] = r ? "array" : "auto";
      patch[axis + ".tickvals"] = t.tickvals; patch[axis + ".ticktext"] = t.ticktext;
    });
    return patch;
  }

  function applyControls(el, layout, key, axes) {
    layout.uirevision = layout.uirevision || "nnt-" + current.x;
    (axes || ["yaxis"]).forEach(function (axis) {
      var a = layout[axis] = layout[axis] || {};
      var log = isLog(key + ":" + axis);
      a.type = log ? "log" : "linear";
      a.uirevision = a.type + "-" + current.x;   // a new scale starts unzoomed on y
      if (!log) { return; }
      a.exponentformat = "e";
    });
    return layout;
  }

  // Log ticks from the layout the chart now has (call after Plotly.react / extendTraces).
  function refreshTicks(el) {
    if (!el || !el.layout) { return; }
    var xr = el.layout.xaxis && el.layout.xaxis.autorange === false ? el.layout.xaxis.range : null;
    var patch = ticksFor(el, xr);
    if (Object.keys(patch).length) { own(el, patch); }
  }

  // A relayout of ours: its plotly_relayout event (sent once the relayout's promise settles)
  // is not a user's zoom.
  function own(el, patch) {
    el._nntOwn = (el._nntOwn || 0) + 1;
    var done = Plotly.relayout(el, patch);
    var release = function () { el._nntOwn -= 1; };
    if (done && done.then) { done.then(release, release); } else { release(); }
    return done;
  }

  function xZoom(el) {
    var xa = el.layout && el.layout.xaxis;
    return xa && xa.autorange === false && xa.range ? xa.range.map(Number) : null;
  }

  // Each y axis the user did not set by hand fits the points inside the zoomed x range.
  function fitY(el) {
    if (!el || !el.layout) { return null; }
    var xr = xZoom(el), user = el._nntYUser || {}, patch = {};
    axesOf(el).forEach(function (axis) {
      if (user[axis]) { return; }
      if (!xr) { patch[axis + ".autorange"] = true; return; }
      var r = extent(el, axis, xr);
      if (r) { patch[axis + ".range"] = padded(r, el.layout[axis].type === "log"); }
    });
    Object.assign(patch, ticksFor(el, xr));
    return Object.keys(patch).length ? own(el, patch) : null;
  }

  function autoY(el) {
    if (el._nntAutoY || !el.on) { return; }
    el._nntAutoY = true;
    el.on("plotly_relayout", function (ev) {
      if (el._nntOwn || !ev) { return; }
      var keys = Object.keys(ev), user = el._nntYUser = el._nntYUser || {}, xChanged = false;
      keys.forEach(function (k) {
        var y = /^(yaxis\d*)\.(range|autorange)/.exec(k);
        if (y) { user[y[1]] = y[2] === "range"; }
        if (/^xaxis\d*\.autorange/.test(k)) { el._nntYUser = user = {}; }   // a double-click: all back
        if (/^xaxis\d*\.(range|autorange)/.test(k)) { xChanged = true; }
      });
      if (xChanged) { fitY(el); }
    });
  }

  // After new points or a redraw: keep a zoomed chart fitted, and log ticks current.
  function afterUpdate(el) {
    if (!el || !el.layout) { return; }
    if (xZoom(el)) { fitY(el); } else { refreshTicks(el); }
  }

  function legend(extra) {
    return Object.assign({ orientation: "h", x: 0, xanchor: "left", y: 1, yanchor: "bottom",
                           font: { size: 11 }, bgcolor: "rgba(255,255,255,0)" }, extra || {});
  }

  var MARK_COLORS = { fatal: "#dc2626", warning: "#d97706" };
  function marks(items, xOf) {
    var shapes = [], annotations = [], atX = {};
    (items || []).forEach(function (item) {
      var x = xOf(item);
      if (x === null || x === undefined || !finite(Number(x))) { return; }
      var color = MARK_COLORS[item.severity] || MARK_COLORS.warning;
      var nth = atX[x] = (atX[x] || 0) + 1;   // labels at one x stack downwards
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, name: item.name || item.label,
                    line: { color: color, width: 1.5, dash: "dash" }, layer: "above" });
      var label = String(item.label || "");
      annotations.push({ xref: "x", yref: "paper", x: x, y: 1 - 0.07 * (nth - 1), xanchor: "left", yanchor: "top",
                         text: label.length > 28 ? label.slice(0, 27) + "…" : label, showarrow: false,
                         font: { size: 10, color: color }, bgcolor: "rgba(255,255,255,0.8)", xshift: 3,
                         name: "mark:" + (item.name || label) });
    });
    return { shapes: shapes, annotations: annotations };
  }

  window.NNTChart = {
    marks: marks,
    ema: ema, smoothTraces: smoothTraces, tick: tick, logTicks: logTicks, timeUnit: timeUnit,
    settings: settings, controls: controls, logToggle: logToggle, applyControls: applyControls,
    autoY: autoY, fitY: fitY, afterUpdate: afterUpdate, refreshTicks: refreshTicks, legend: legend, extent: extent,
  };
})();
