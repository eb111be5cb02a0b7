// Distributions of one layer variable over epochs, drawn with Plotly: a heatmap (epoch × value,
// colour = share of values), a ridgeline (TensorBoard's "offset" view: one filled curve per
// epoch, later epochs in front and darker), one epoch as a plain histogram, and the
// layers × epochs overview grid used when too many layers share a chart for lines to be read.
(function () {
  "use strict";
  var NNT = window.NNT;
  if (!NNT || !window.Plotly) { return; }
  var MAX_RIDGES = 60;   // more curves than this cannot be told apart: an even spread is drawn
  var PICKED = "#dc2626";
  // White for "no values here" up to dark blue for the most crowded bin: empty space reads as empty.
  var SHARE = [[0, "#ffffff"], [0.04, "#eff6ff"], [0.25, "#93c5fd"], [0.6, "#2563eb"], [1, "#1e3a8a"]];

  function mids(edges) {
    var out = [];
    for (var i = 0; i < edges.length - 1; i++) { out.push((edges[i] + edges[i + 1]) / 2); }
    return out;
  }
  // Indexes of at most `limit` items out of `n`, evenly spread, first and last kept.
  function spread(n, limit) {
    var out = [];
    if (n <= limit) { for (var i = 0; i < n; i++) { out.push(i); } return out; }
    var step = (n - 1) / (limit - 1);
    for (var k = 0; k < limit; k++) { out.push(Math.round(k * step)); }
    return out;
  }
  // Rows to label: those nearest each multiple of a round step (1, 2, 5, 10, 20, 50…), about `k`.
  function epochTicks(epochs, k) {
    var first = epochs[0], last = epochs[epochs.length - 1], step = 1, out = [];
    while ((last - first) / step > k) { step *= Math.round(step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9))) === 2 ? 2.5 : 2; }
    for (var m = Math.ceil(first / step) * step; m <= last; m += step) {
      var best = 0;
      epochs.forEach(function (e, r) { if (Math.abs(e - m) < Math.abs(epochs[best] - m)) { best = r; } });
      if (out.indexOf(best) === -1) { out.push(best); }
    }
    return out.length ? out : [epochs.length - 1];
  }
  // Light (old) to dark (new) blue; `t` in [0, 1].
  function shade(t, light) {
    var a = [191, 219, 254], b = [29, 78, 216];
    var c = a.map(function (v, i) { return Math.round(v + (b[i] - v) * t); });
    if (light) { c = c.map(function (v) { return Math.round(v + (255 - v) * 0.55); }); }
    return "rgb(" + c.join(",") + ")";
  }
  function sizes(compact) {
    return compact ? { height: 190, margin: { l: 44, r: 8, t: 6, b: 30 } }
                   : { height: 300, margin: { l: 56, r: 12, t: 8, b: 40 } };
  }
  function noData(el, hist) {
    if (hist && hist.edges && hist.edges.length) { return false; }
    NNT.empty(el, "No histogram recorded yet.");
    return true;
  }

  function heatmap(el, s, hist, opts) {
    if (noData(el, hist)) { return; }
    var m = mids(hist.edges);
    var z = m.map(function (_, j) { return hist.density.map(function (row) { return row.length ? row[j] : null; }); });
    var size = sizes(opts.compact);
    el._nntView = { kind: "heatmap", epochs: s.epochs.slice() };
    return NNT.plot(el, [{ type: "heatmap", x: s.epochs, y: m, z: z, colorscale: SHARE, showscale: !opts.compact,
                           colorbar: { title: { text: "share", side: "right" }, thickness: 10 },
                           hovertemplate: "epoch %{x}<br>value %{y:.3g}<br>%{z:.1%} of values<extra></extra>" }],
                    NNT.layout({ height: size.height, margin: size.margin, showlegend: false, hovermode: "closest",
                                 shapes: marker(opts.selected),
                                 xaxis: { title: { text: opts.compact ? "" : "epoch" }, gridcolor: "#e2e8f0", zeroline: false },
                                 yaxis: { title: { text: opts.compact ? "" : "value" }, gridcolor: "#e2e8f0", zeroline: false, automargin: true } }));
  }
  function marker(epoch) {
    if (epoch === null || epoch === undefined) { return []; }
    return [{ type: "line", xref: "x", yref: "paper", x0: epoch, x1: epoch, y0: 0, y1: 1, line: { color: PICKED, width: 2 } }];
  }

  function ridgeline(el, s, hist, opts) {
    if (noData(el, hist)) { return; }
    var m = mids(hist.edges), lo = hist.edges[0], hi = hist.edges[hist.edges.length - 1];
    var picked = spread(s.epochs.length, MAX_RIDGES), n = picked.length, lift = opts.compact ? 2.2 : 2.8;
    var peak = 0;
    picked.forEach(function (k) { (hist.density[k] || []).forEach(function (d) { if (d > peak) { peak = d; } }); });
    peak = peak || 1;
    var colors = [], traces = picked.map(function (k, r) {
      var row = hist.density[k] && hist.density[k].length ? hist.density[k] : m.map(function () { return 0; });
      var base = n - 1 - r, t = n > 1 ? r / (n - 1) : 1;   // the first epoch at the back (top)
      colors.push(shade(t));
      return { type: "scatter", mode: "lines", fill: "toself", name: "epoch " + s.epochs[k],
               x: [lo].concat(m, [hi]), y: [base].concat(row.map(function (d) { return base + d / peak * lift; }), [base]),
               customdata: [0].concat(row, [0]), line: { color: colors[r], width: 1 }, fillcolor: shade(t, true),
               hoveron: "points", hovertemplate: "epoch " + s.epochs[k] + "<br>value %{x:.3g}<br>%{customdata:.1%} of values<extra></extra>" };
    });
    var ticks = epochTicks(picked.map(function (k) { return s.epochs[k]; }), opts.compact ? 4 : 8);
    el._nntView = { kind: "ridgeline", epochs: picked.map(function (k) { return s.epochs[k]; }), colors: colors };
    var done = NNT.plot(el, traces, NNT.layout({
      height: sizes(opts.compact).height, margin: sizes(opts.compact).margin, showlegend: false, hovermode: "closest",
      xaxis: { title: { text: opts.compact ? "" : "value" }, gridcolor: "#e2e8f0", zeroline: false },
      yaxis: { title: { text: opts.compact ? "" : "epoch" }, showgrid: false, zeroline: false, range: [-0.3, n - 1 + lift + 0.2],
               tickvals: ticks.map(function (r) { return n - 1 - r; }), ticktext: ticks.map(function (r) { return String(s.epochs[picked[r]]); }) },
    }));
    if (opts.selected !== null && opts.selected !== undefined) { select(el, opts.selected); }
    return done;
  }

  // Mark one epoch on a drawn chart: a line on the heatmap, the nearest curve in red on the ridgeline.
  function select(el, epoch) {
    var v = el._nntView;
    if (!v || !el._fullLayout) { return null; }
    if (v.kind === "heatmap") { Plotly.relayout(el, { shapes: marker(epoch) }); return epoch; }
    var best = 0;
    v.epochs.forEach(function (e, i) { if (Math.abs(e - epoch) < Math.abs(v.epochs[best] - epoch)) { best = i; } });
    Plotly.restyle(el, { "line.color": v.colors.map(function (c, i) { return i === best ? PICKED : c; }),
                         "line.width": v.colors.map(function (_, i) { return i === best ? 2.5 : 1; }) });
    el.setAttribute("data-selected", String(v.epochs[best]));
    return v.epochs[best];
  }

  function histogram(el, s, hist, epoch, title) {
    if (noData(el, hist)) { return; }
    var k = s.epochs.indexOf(epoch);
    var row = k >= 0 ? hist.density[k] : [];
    if (!row || !row.length) { NNT.empty(el, "No histogram recorded at epoch " + epoch + "."); return; }
    el.setAttribute("data-epoch", String(epoch));
    var width = hist.edges[1] - hist.edges[0];
    return NNT.plot(el, [{ type: "bar", x: mids(hist.edges), y: row, width: width, name: "epoch " + epoch,
                           marker: { color: PICKED, opacity: 0.75, line: { width: 0 } },
                           hovertemplate: "value %{x:.3g}<br>%{y:.1%} of values<extra>epoch " + epoch + "</extra>" }],
                    NNT.layout({ height: 190, margin: { l: 52, r: 12, t: 26, b: 36 }, showlegend: false, hovermode: "closest", bargap: 0,
                                 title: { text: title + " at epoch " + epoch, font: { size: 12 }, x: 0.01, y: 0.97 },
                                 xaxis: { title: { text: "" }, gridcolor: "#e2e8f0", zeroline: false },
                                 yaxis: { tickformat: ".0%", gridcolor: "#e2e8f0", zeroline: false, automargin: true } }));
  }

  // Layers (rows) × epochs (columns), colour = one statistic; flagged cells marked with an ×.
  function grid(el, list, stat, opts) {
    var epochs = {}, rows = list.length;
    list.forEach(function (t) { t.epochs.forEach(function (e) { epochs[e] = true; }); });
    var xs = Object.keys(epochs).map(Number).sort(function (a, b) { return a - b; });
    var names = list.map(opts.name);
    var z = list.map(function (t) {
      var at = {};
      t.epochs.forEach(function (e, i) { at[e] = t.stats[stat][i]; });
      return xs.map(function (e) {
        var v = at[e];
        if (v === null || v === undefined) { return null; }
        return opts.log ? (v > 0 ? Math.log10(v) : null) : v;
      });
    });
    var text = names.map(function (n) { return xs.map(function () { return n; }); });
    var fx = [], fy = [], ft = [];
    list.forEach(function (t, r) {
      t.flags.forEach(function (f, i) { if (f && f.length) { fx.push(t.epochs[i]); fy.push(r); ft.push(names[r] + ": " + f.join(", ")); } });
    });
    var ticks = spread(rows, 16);
    var traces = [{ type: "heatmap", x: xs, y: names.map(function (_, r) { return r; }), z: z, text: text,
                    colorscale: opts.colorscale || "Viridis", zmin: opts.zmin, zmax: opts.zmax,
                    colorbar: { title: { text: opts.ctitle, side: "right" }, thickness: 10 },
                    hovertemplate: "%{text}<br>epoch %{x}<br>" + opts.ctitle + " %{z:.3g}<extra></extra>" }];
    if (fx.length) {
      traces.push({ type: "scatter", mode: "markers", x: fx, y: fy, text: ft, marker: { color: PICKED, size: 5, symbol: "x", opacity: 0.8 },
                    hovertemplate: "%{text}<extra>flagged</extra>" });
    }
    return NNT.plot(el, traces, NNT.layout({
      height: Math.max(280, Math.min(640, 70 + rows * 4)), showlegend: false, hovermode: "closest",
      yaxis: { autorange: "reversed", zeroline: false, showgrid: false, automargin: true,
               tickvals: ticks, ticktext: ticks.map(function (r) { return names[r]; }), tickfont: { size: 10 } },
    }));
  }

  NNT.dist = {
    draw: function (el, s, hist, view, opts) { return (view === "ridgeline" ? ridgeline : heatmap)(el, s, hist, opts || {}); },
    select: select,
    histogram: histogram,
    grid: grid,
  };
})();
