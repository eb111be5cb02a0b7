// Live metrics chart: initial points from the page, then WebSocket pushes. Never polls.
(function () {
  "use strict";
  var HIDDEN = { learning_rate: 1, epoch_time_s: 1, samples_per_s: 1 };
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  var chart = document.getElementById("chart-metrics");
  if (!chart || !window.Plotly) { return; }
  var initial = JSON.parse(document.getElementById("initial-metrics").textContent);
  var simId = initial.simulation_id;
  var traceIndex = {};   // metric -> trace index
  var lastEpoch = {};    // metric -> last drawn epoch (skip duplicates and replays)
  var traces = [];
  var total = 0;
  window.nntLive = { frames: 0, points: 0 };

  function isLoss(name) { return name.indexOf("loss") !== -1; }
  function baseName(name) { return name.indexOf("val_") === 0 ? name.slice(4) : name; }

  function styleFor(name) {
    var bases = Object.keys(traceIndex).map(baseName).filter(function (v, i, a) { return a.indexOf(v) === i; });
    var i = bases.indexOf(baseName(name));
    if (i === -1) { i = bases.length; }
    return { color: COLORS[i % COLORS.length], width: 2, dash: name.indexOf("val_") === 0 ? "dash" : "solid" };
  }

  function newTrace(name, epochs, values) {
    var line = styleFor(name);
    return { name: name, x: epochs, y: values, mode: "lines+markers", type: "scatter",
             line: line, marker: { size: 5, color: line.color }, yaxis: isLoss(name) ? "y" : "y2",
             hovertemplate: name + " · epoch %{x}: %{y:.4g}<extra></extra>" };
  }

  function setCount() {
    chart.setAttribute("data-points", String(total));
    document.getElementById("chart-count").textContent = total ? total + " points" : "";
    document.getElementById("chart-empty").classList.toggle("hidden", total > 0);
  }

  var layout = {
    margin: { l: 56, r: 16, t: 10, b: 44 }, height: 460, hovermode: "x unified",
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#334155" },
    grid: { rows: 2, columns: 1, subplots: [["xy"], ["xy2"]], roworder: "top to bottom" },
    xaxis: { title: { text: "epoch" }, gridcolor: "#e2e8f0", zeroline: false, rangemode: "tozero" },
    yaxis: { title: { text: "loss" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0.55, 1] },
    yaxis2: { title: { text: "metrics" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0, 0.45], anchor: "x" },
    legend: { orientation: "h", y: -0.14 },
  };

  Object.keys(initial.metrics).sort().forEach(function (name) {
    if (HIDDEN[name]) { return; }
    var s = initial.metrics[name];
    var xs = [], ys = [];
    for (var i = 0; i < s.epochs.length; i++) {
      if (s.values[i] === null) { continue; }
      xs.push(s.epochs[i]); ys.push(s.values[i]);
    }
    traceIndex[name] = traces.length;
    traces.push(newTrace(name, xs, ys));
    lastEpoch[name] = xs.length ? xs[xs.length - 1] : -1;
    total += xs.length;
  });
  Plotly.newPlot(chart, traces, layout, { responsive: true, displaylogo: false });
  setCount();

  function addPoints(points) {
    var fresh = {};  // metric -> {x: [], y: []}
    points.forEach(function (p) {
      Object.keys(p.values || {}).forEach(function (name) {
        var v = p.values[name];
        if (HIDDEN[name] || v === null || v === undefined) { return; }
        if (lastEpoch[name] !== undefined && p.epoch <= lastEpoch[name]) { return; }
        lastEpoch[name] = p.epoch;
        (fresh[name] = fresh[name] || { x: [], y: [] }).x.push(p.epoch);
        fresh[name].y.push(v);
      });
    });
    var extend = { x: [], y: [] }, idx = [], added = 0;
    Object.keys(fresh).forEach(function (name) {
      added += fresh[name].x.length;
      if (traceIndex[name] === undefined) {
        traceIndex[name] = chart.data.length;
        Plotly.addTraces(chart, newTrace(name, fresh[name].x, fresh[name].y));
      } else {
        idx.push(traceIndex[name]); extend.x.push(fresh[name].x); extend.y.push(fresh[name].y);
      }
    });
    if (idx.length) { Plotly.extendTraces(chart, extend, idx); }
    total += added;
    window.nntLive.points += added;
    setCount();
    var last = points.length ? points[points.length - 1].epoch : null;
    if (last !== null) { setEpoch(last, null); }
  }

  function setEpoch(epoch, totalEpochs) {
    var shown = document.getElementById("sim-epoch-value");
    var tot = document.getElementById("sim-total");
    if (epoch !== null && epoch !== undefined && Number(epoch) >= Number(shown.textContent)) { shown.textContent = epoch; }
    if (totalEpochs) { tot.textContent = totalEpochs; }
    var t = Number(tot.textContent), e = Number(shown.textContent);
    if (t > 0) { document.getElementById("sim-progress").style.width = Math.min(100, Math.round(100 * e / t)) + "%"; }
  }

  function setStatus(st) {
    var badge = document.getElementById("sim-status");
    if (st.status) { badge.textContent = st.status; badge.className = "badge big status-" + st.status; }
    setEpoch(st.epoch, st.total_epochs);
    var msg = document.getElementById("sim-message");
    var text = st.error || st.message || "";
    msg.textContent = text;
    msg.classList.toggle("hidden", !text);
    msg.classList.toggle("error", st.status === "failed");
  }

  var conn = document.getElementById("live-conn");
  var delay = 1000;
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + chart.getAttribute("data-ws-path"));
    ws.onopen = function () { delay = 1000; conn.textContent = "live"; conn.className = "conn on"; };
    ws.onmessage = function (ev) {
      window.nntLive.frames += 1;
      var msg = JSON.parse(ev.data);
      if (msg.simulation_id && msg.simulation_id !== simId) { return; }
      if (msg.kind === "epochs") { addPoints(msg.points || []); }
      else if (msg.kind === "status") { setStatus(msg.status || {}); }
    };
    ws.onclose = function (ev) {
      conn.className = "conn off";
      if (ev.code === 4403) { conn.textContent = "not allowed"; return; }
      conn.textContent = "reconnecting…";
      setTimeout(connect, delay);   // reconnect the socket; data still only arrives by push
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
