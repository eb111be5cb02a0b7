// Simulation page, General tab and header: live metrics store, overview chart, status, tables,
// lifecycle buttons and tags. Data arrives by WebSocket push only; it never polls.
(function () {
  "use strict";
  var NNT = window.NNT;
  var HIDDEN = { learning_rate: 1, epoch_time_s: 1, samples_per_s: 1 };
  var chart = document.getElementById("chart-metrics");
  if (!chart || !window.Plotly || !NNT) { return; }
  var initial = JSON.parse(document.getElementById("initial-metrics").textContent);
  var simId = initial.simulation_id;
  window.nntLive = { frames: 0, points: 0 };

  // ---- metric store shared by every chart of the page --------------------------------------
  var store = NNT.metrics = { series: {}, listeners: [], raw: false };
  store.onChange = function (fn) { store.listeners.push(fn); };
  function notify(type, fresh) { store.listeners.forEach(function (fn) { fn(type, fresh); }); }
  function load(metrics) {
    store.series = {};
    Object.keys(metrics).forEach(function (name) {
      var s = metrics[name], xs = [], ys = [];
      for (var i = 0; i < s.epochs.length; i++) {
        if (s.values[i] === null) { continue; }
        xs.push(s.epochs[i]); ys.push(s.values[i]);
      }
      store.series[name] = { x: xs, y: ys };
    });
  }
  store.lastEpoch = function (name) { var s = store.series[name]; return s && s.x.length ? s.x[s.x.length - 1] : -1; };
  load(initial.metrics);

  // ---- overview chart ------------------------------------------------------------------------
  // Drawn against epochs, steps or wall time (the page's x-axis control), smoothed by the page's
  // EMA with the raw line faint behind, a log or linear y per panel; a user's zoom survives
  // live points (uirevision) and y fits what a zoom on x shows (NNTChart.autoY).
  var Kit = window.NNTChart;
  var traceIndex = {};      // metric -> {raw: index, smooth: index | null}
  var emaState = {};        // metric -> running average of the smoothed line
  var unit = { div: 1, label: "s" };
  store.at = {};            // epoch -> ms: when the epoch landed (live points, /timeline)
  store.t0 = null; store.stepsPerEpoch = null; store.timeline = null;
  function isLoss(name) { return name.indexOf("loss") !== -1; }
  function baseName(name) { return name.indexOf("val_") === 0 ? name.slice(4) : name; }
  function colorOf(name, names) {
    var bases = [];
    names.forEach(function (n) { if (bases.indexOf(baseName(n)) === -1) { bases.push(baseName(n)); } });
    var i = bases.indexOf(baseName(name));
    return NNT.COLORS[(i === -1 ? bases.length : i) % NNT.COLORS.length];
  }
  // What the x-axis shows: epochs, unless the chosen axis can be drawn (steps and times known).
  function xMode() {
    var want = Kit.settings.get().x;
    if (want === "step" && store.stepsPerEpoch) { return "step"; }
    if (want === "time" && store.t0 !== null) { return "time"; }
    return "epoch";
  }
  function xOf(epoch, mode) {
    if (mode === "step") { return epoch * store.stepsPerEpoch; }
    if (mode === "time") { var at = store.at[epoch]; return at === undefined ? null : (at - store.t0) / 1000 / unit.div; }
    return epoch;
  }
  function mapped(epochs, ys, mode) {
    var x = [], y = [];
    for (var i = 0; i < epochs.length; i++) {
      var v = xOf(epochs[i], mode);
      if (v !== null) { x.push(v); y.push(ys[i]); }
    }
    return { x: x, y: y };
  }
  function xTitle(mode) {
    return mode === "step" ? "step (batches)" : mode === "time" ? "wall time (" + unit.label + " since start)" : "epoch";
  }
  function hoverX(mode) {
    return mode === "step" ? "step %{x}" : mode === "time" ? "%{x:.3g} " + unit.label : "epoch %{x}";
  }
  function newTrace(name, xs, ys, names, mode) {
    var color = colorOf(name, names);
    return { name: name, x: xs, y: ys, mode: xs.length > 200 ? "lines" : "lines+markers", type: "scatter",
             line: { color: color, width: 2, dash: name.indexOf("val_") === 0 ? "dash" : "solid" },
             marker: { size: 4, color: color }, yaxis: isLoss(name) ? "y" : "y2",
             hovertemplate: name + " · " + hoverX(mode) + ": %{y:.4g}<extra></extra>" };
  }
  function count() {
    var total = 0;
    Object.keys(traceIndex).forEach(function (n) { total += store.series[n].x.length; });
    chart.setAttribute("data-points", String(total));
    document.getElementById("chart-count").textContent = total ? total + " points" + (store.raw ? " (raw)" : "") : "";
    document.getElementById("chart-empty").classList.toggle("hidden", total > 0);
  }
  function pickUnit(mode) {
    var last = 0;
    if (mode === "time") { Object.keys(store.at).forEach(function (e) { last = Math.max(last, (store.at[e] - store.t0) / 1000); }); }
    return Kit.timeUnit(last);
  }
  function xNote(mode) {
    var want = Kit.settings.get().x, note = document.getElementById("chart-x-note");
    if (!note || !store.timeline) { return; }   // not read yet, or its failure is on show
    var text = "";
    if (want === "step" && mode !== "step") { text = "steps unknown for this run (no batch size or throughput logged): drawn by epoch"; }
    if (want === "time" && mode !== "time") { text = "no epoch time recorded yet: drawn by epoch"; }
    note.textContent = text;
    note.classList.toggle("hidden", !text);
  }
  function drawOverview() {
    var mode = xMode(), weight = Kit.settings.get().smoothing;
    unit = pickUnit(mode);
    traceIndex = {}; emaState = {};
    var names = Object.keys(store.series).filter(function (n) { return !HIDDEN[n]; }).sort();
    var traces = [];
    names.forEach(function (name) {
      var m = mapped(store.series[name].x, store.series[name].y, mode);
      var t = newTrace(name, m.x, m.y, names, mode);
      if (weight > 0) {
        var pair = Kit.smoothTraces([t], weight);
        emaState[name] = { last: 0, n: 0 };
        Kit.ema(m.y, weight, emaState[name]);       // where live points carry the average on
        traceIndex[name] = { raw: traces.length, smooth: traces.length + 1 };
        traces.push(pair[0], pair[1]);
      } else {
        traceIndex[name] = { raw: traces.length, smooth: null };
        traces.push(t);
      }
    });
    var layout = NNT.layout({
      height: 460, margin: { l: 60, r: 16, t: 8, b: 48 },
      grid: { rows: 2, columns: 1, subplots: [["xy"], ["xy2"]], roworder: "top to bottom" },
      xaxis: { title: { text: xTitle(mode) }, gridcolor: "#e2e8f0", zeroline: false, rangemode: mode === "epoch" ? "tozero" : "normal" },
      yaxis: { title: { text: "loss" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0.55, 1], automargin: true },
      yaxis2: { title: { text: "metrics" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0, 0.45], anchor: "x", automargin: true },
      legend: Kit.legend(), uirevision: "nnt-" + mode,
    });
    Kit.applyControls(chart, layout, "chart-metrics", ["yaxis", "yaxis2"]);
    var marks = diagnosisMarks(mode);
    layout.shapes = marks.shapes; layout.annotations = marks.annotations;
    var done = Plotly.react(chart, traces, layout, NNT.PLOT_CONFIG);
    Kit.autoY(chart);
    if (done && done.then) { done.then(function () { Kit.afterUpdate(chart); }); }
    count();
    xNote(mode);
  }
  function extendOverview(fresh) {
    var mode = xMode(), weight = Kit.settings.get().smoothing;
    if (mode === "time" && pickUnit(mode).div !== unit.div) { drawOverview(); return; }
    var raw = { idx: [], x: [], y: [] }, smooth = { idx: [], x: [], y: [], customdata: [] };
    var added = false;
    Object.keys(fresh).forEach(function (name) {
      if (HIDDEN[name]) { return; }
      if (traceIndex[name] === undefined) { added = true; return; }
      var m = mapped(fresh[name].x, fresh[name].y, mode), ti = traceIndex[name];
      if (!m.x.length) { return; }
      raw.idx.push(ti.raw); raw.x.push(m.x); raw.y.push(m.y);
      if (ti.smooth !== null) {
        smooth.idx.push(ti.smooth); smooth.x.push(m.x); smooth.y.push(Kit.ema(m.y, weight, emaState[name]));
        smooth.customdata.push(m.y);
      }
    });
    if (added) { drawOverview(); return; }   // a new metric: its colour and panel are set on a full draw
    if (raw.idx.length) { Plotly.extendTraces(chart, { x: raw.x, y: raw.y }, raw.idx); }
    if (smooth.idx.length) { Plotly.extendTraces(chart, { x: smooth.x, y: smooth.y, customdata: smooth.customdata }, smooth.idx); }
    if (raw.idx.length) { Kit.afterUpdate(chart); }
    count();
  }
  // A dashed line at the epoch each active diagnosis was first seen (diagnoses.js keeps the
  // list current from live `diagnosis` updates).
  store.diagnoses = initial.diagnoses || [];
  function diagnosisMarks(mode) {
    var items = store.diagnoses.map(function (d) {
      return { label: d.title, severity: d.severity, name: d.problem, epoch: d.first_epoch };
    });
    return Kit.marks(items, function (item) { return xOf(item.epoch, mode); });
  }
  store.setDiagnoses = function (list) {
    store.diagnoses = list || [];
    if (!chart.layout) { return; }
    var marks = diagnosisMarks(xMode());
    Plotly.relayout(chart, { shapes: marks.shapes, annotations: marks.annotations });
  };
  drawOverview();
  store.onChange(function (type, fresh) {
    if (type === "reset") { drawOverview(); return; }
    extendOverview(fresh);
  });

  // ---- the page's chart controls -------------------------------------------------------------
  // Steps and wall time need each epoch's time and the steps per epoch: read once when asked for
  // (and after a reload of the series), then kept current by the `at` of every live point.
  var loadingTimeline = null;
  function loadTimeline() {
    if (loadingTimeline) { return loadingTimeline; }
    loadingTimeline = NNT.api("GET", "/api/simulations/" + simId + "/timeline").then(function (t) {
      store.timeline = t;
      store.stepsPerEpoch = t.steps_per_epoch || null;
      if (t.t0) {
        var t0 = Date.parse(t.t0);
        store.t0 = t0;
        t.epochs.forEach(function (e, i) { store.at[e] = t0 + t.seconds[i] * 1000; });
      }
    }).catch(function (err) {
      var note = document.getElementById("chart-x-note");
      if (note) { note.textContent = "Could not read the run's timeline: " + err.message; note.classList.remove("hidden"); }
    }).then(function () { loadingTimeline = null; });
    return loadingTimeline;
  }
  store.needsTimeline = function () { return Kit.settings.get().x !== "epoch"; };
  store.loadTimeline = loadTimeline;
  var controlBar = document.getElementById("chart-controls");
  Kit.controls(controlBar);
  document.querySelectorAll("[data-log-toggle]").forEach(function (slot) {
    var key = slot.getAttribute("data-log-toggle");
    slot.appendChild(Kit.logToggle(chart, key, slot.getAttribute("data-label"), slot.getAttribute("data-id")));
  });
  Kit.settings.onChange(function (now, before) {
    if (now.x !== before.x && now.x !== "epoch" && !store.timeline) { loadTimeline().then(drawOverview); return; }
    drawOverview();
  });
  if (store.needsTimeline()) { loadTimeline().then(drawOverview); }
  // The bar acts on the charts of the General and Comparisons tabs only.
  ["general", "comparisons", "graphs", "download"].forEach(function (tab) {
    NNT.tabs.on(tab, function () { if (controlBar) { controlBar.classList.toggle("hidden", tab === "graphs" || tab === "download"); } });
  });

  // ---- epoch tables ------------------------------------------------------------------------
  var CORE = ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"];
  var RUN_INFO = { epoch_time_s: 1, samples_per_s: 1 };
  function wants(table, name) {
    if (RUN_INFO[name]) { return false; }
    return table.id === "epoch-table" ? CORE.indexOf(name) !== -1 : CORE.indexOf(name) === -1;
  }
  function ensureCols(table, values) {
    // A column appears the first time its metric does (a page opened before the first epoch).
    var cols = (table.getAttribute("data-cols") || "").split(",").filter(Boolean);
    var added = Object.keys(values).filter(function (n) { return cols.indexOf(n) === -1 && wants(table, n); });
    if (!added.length) { return cols; }
    added.sort(function (a, b) { return (CORE.indexOf(a) + 1 || 99) - (CORE.indexOf(b) + 1 || 99) || a.localeCompare(b); });
    var head = table.tHead.rows[0];
    added.forEach(function (n) {
      var th = document.createElement("th"); th.className = "num"; th.textContent = NNT.label(n); head.appendChild(th);
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) { var td = r.insertCell(-1); td.className = "num"; td.textContent = "–"; });
    });
    cols = cols.concat(added);
    table.setAttribute("data-cols", cols.join(","));
    return cols;
  }
  function tableAdd(table, epoch, values) {
    if (!table) { return; }
    var cols = ensureCols(table, values);
    if (!cols.some(function (c) { return values[c] !== undefined; })) { return; }
    var body = table.tBodies[0];
    var row = body.querySelector('tr[data-epoch="' + epoch + '"]');
    if (!row) {
      row = document.createElement("tr");
      row.setAttribute("data-epoch", String(epoch));
      var td = document.createElement("td"); td.textContent = epoch; row.appendChild(td);
      cols.forEach(function () { var c = document.createElement("td"); c.className = "num"; c.textContent = "–"; row.appendChild(c); });
      body.appendChild(row);
    }
    cols.forEach(function (c, i) { if (values[c] !== undefined) { row.cells[i + 1].textContent = NNT.fmt(values[c]); } });
    table.classList.remove("hidden");
    var note = document.getElementById(table.id === "epoch-table" ? "epoch-empty" : "extra-empty");
    if (note) { note.classList.add("hidden"); }
  }

  // ---- live points -------------------------------------------------------------------------
  function addPoints(points) {
    var fresh = {}, added = 0;
    var timeless = false;
    points.forEach(function (p) {
      var vals = p.values || {};
      if (p.at) { store.at[p.epoch] = Date.parse(p.at); } else if (store.at[p.epoch] === undefined) { timeless = true; }
      Object.keys(vals).forEach(function (name) {
        var v = vals[name];
        if (v === null || v === undefined || p.epoch <= store.lastEpoch(name)) { return; }
        var s = store.series[name] = store.series[name] || { x: [], y: [] };
        s.x.push(p.epoch); s.y.push(v);
        var f = fresh[name] = fresh[name] || { x: [], y: [] };
        f.x.push(p.epoch); f.y.push(v);
        if (!HIDDEN[name]) { added += 1; }
      });
      tableAdd(document.getElementById("epoch-table"), p.epoch, vals);
      tableAdd(document.getElementById("extra-table"), p.epoch, vals);
    });
    window.nntLive.points += added;
    // Epochs sent again after a reconnect carry no time: wall time reads them from the timeline.
    if (timeless && store.timeline && Kit.settings.get().x === "time") { refreshTimeline(); }
    if (Object.keys(fresh).length) { notify("append", fresh); }
    if (points.length) { setEpoch(points[points.length - 1].epoch, null); }
  }

  var refreshTimeline = NNT.debounce(function () { loadTimeline().then(drawOverview); }, 1500);

  // ---- header: status, progress, buttons ---------------------------------------------------
  var toolbar = document.getElementById("sim-toolbar");
  var note = document.getElementById("action-note");
  function setButtons(status) {
    toolbar.setAttribute("data-status", status);
    toolbar.querySelectorAll("[data-action]").forEach(function (b) {
      b.disabled = !NNT.lifecycle.allowed(b.getAttribute("data-action"), status);   // schemas/lifecycle.py
    });
  }
  function setEpoch(epoch, totalEpochs) {
    var shown = document.getElementById("sim-epoch-value");
    var tot = document.getElementById("sim-total");
    if (epoch !== null && epoch !== undefined && Number(epoch) >= Number(shown.textContent)) { shown.textContent = epoch; }
    if (totalEpochs) { tot.textContent = totalEpochs; }
    var t = Number(tot.textContent), e = Number(shown.textContent);
    if (t > 0) { document.getElementById("sim-progress").style.width = Math.min(100, Math.round(100 * e / t)) + "%"; }
  }
  var ENDED = { stopped: 1, finished: 1, failed: 1, deleted: 1 };
  function setStatus(st) {
    var badge = document.getElementById("sim-status");
    if (toolbar.getAttribute("data-deleted") === "1") { return; }   // deleted is final
    if (st.status === "deleted") { setDeleted(st); return; }
    if (st.status) {
      if (st.status !== badge.textContent) { note.textContent = ""; }   // the run answered
      if (st.status === "finished" && badge.textContent !== "finished") { loadTestMetrics(); }
      badge.textContent = st.status; badge.className = "badge big status-" + st.status; setButtons(st.status);
      setEnded(st.status);
    }
    setEpoch(st.epoch, st.total_epochs);
    var failed = badge.textContent === "failed";
    var msg = document.getElementById("sim-message");
    var text = NNT.headline(st.message);
    msg.textContent = failed ? "" : text;
    msg.classList.toggle("hidden", failed || !text);
    setFailure(failed ? st : null);
  }
  // A run that finishes while its page is open: its test-set evaluation, without a reload.
  function loadTestMetrics() {
    var panel = document.getElementById("test-metrics");
    if (!panel) { return; }
    NNT.api("GET", "/api/simulations/" + simId).then(function (sim) {
      var names = Object.keys(sim.test_metrics || {});
      if (!names.length) { return; }
      var cards = document.createElement("div"); cards.className = "stat-cards";
      names.forEach(function (name) {
        var card = document.createElement("div"); card.className = "stat";
        var label = document.createElement("span"); label.className = "label";
        var text = name.replace(/^val_/, "").replace(/_/g, " ");
        text = name.indexOf("val_") === 0 ? "validation " + text : text;
        label.textContent = text.charAt(0).toUpperCase() + text.slice(1);
        var value = document.createElement("b"); value.textContent = String(Number(Number(sim.test_metrics[name]).toPrecision(4)));
        card.appendChild(label); card.appendChild(value); cards.appendChild(card);
      });
      Array.prototype.slice.call(panel.children, 1).forEach(function (el) { el.remove(); });
      panel.appendChild(cards);
    }).catch(function () { /* the panel keeps its note; a reload shows the metrics */ });
  }
  // A failed run: the one-line reason as the headline, the full error behind "Details".
  function setFailure(st) {
    var box = document.getElementById("sim-failure");
    box.classList.toggle("hidden", !st);
    if (!st) { return; }
    var line = NNT.headline(st.message || st.error) || "The run reported no reason.";
    var full = String(st.error || "").trim();
    document.getElementById("sim-failure-reason").textContent = line;
    document.getElementById("sim-failure-text").textContent = full;
    document.getElementById("sim-failure-details").classList.toggle("hidden", !full || full === line);
  }
  // Deleted (here, in another tab or by any client): say so, and leave nothing to act on but
  // the way back to the list.
  function setDeleted(st) {
    var badge = document.getElementById("sim-status");
    badge.textContent = "deleted"; badge.className = "badge big status-deleted";
    toolbar.setAttribute("data-deleted", "1");
    setButtons("deleted"); setEnded("deleted"); setFailure(null);
    note.textContent = "";
    document.getElementById("sim-message").classList.add("hidden");
    var link = document.getElementById("download-link");
    if (link) { link.removeAttribute("href"); link.setAttribute("aria-disabled", "true"); link.classList.add("disabled"); }
    document.querySelectorAll("#tag-editor input, #tag-editor button, .js-raw").forEach(function (el) { el.disabled = true; });
    if (document.getElementById("sim-deleted")) { return; }
    var box = document.createElement("section");
    box.id = "sim-deleted"; box.className = "deleted-note"; box.setAttribute("role", "alert");
    var title = document.createElement("h2"); title.textContent = "This run was deleted";
    var text = document.createElement("p");
    text.textContent = (NNT.headline(st && st.message) || "It was deleted") + ". Its recorded metrics and tensors are removed. ";
    var back = document.createElement("a"); back.href = "/simulations/"; back.textContent = "Back to the simulations";
    text.appendChild(back); box.appendChild(title); box.appendChild(text);
    toolbar.parentNode.insertBefore(box, toolbar.nextSibling);
  }
  // Notes that wait for the first epoch say so only while the run can still log one.
  function setEnded(status) {
    document.querySelectorAll("[data-waiting][data-ended]").forEach(function (el) {
      el.textContent = ENDED[status] ? el.getAttribute("data-ended").replace("{status}", status)
                                     : el.getAttribute("data-waiting");
    });
  }
  setButtons(initial.status);
  if (initial.status === "deleted") { setDeleted(null); }

  toolbar.querySelectorAll("[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.getAttribute("data-action");
      var go = action === "delete"
        ? NNT.confirm("Delete this simulation?", "Its recorded metrics and tensors are removed. This cannot be undone.", "Delete")
        : action === "stop"
          ? NNT.confirm("Stop this simulation?", "It saves a checkpoint and stops; Resume continues from there.", "Stop")
          : Promise.resolve(true);
      go.then(function (ok) {
        if (!ok) { return; }
        b.disabled = true;
        var badge = document.getElementById("sim-status"), before = badge.textContent;
        note.className = "action-note muted"; note.textContent = action + " sent…";
        var url = "/api/simulations/" + simId + (action === "delete" ? "" : "/" + action);
        NNT.api(action === "delete" ? "DELETE" : "POST", url).then(function () {
          // the run may have answered (pushed its new status) before this reply arrived
          note.textContent = badge.textContent !== before ? "" : action + " requested · waiting for the run to answer";
          if (action === "delete") { window.location.href = "/simulations/?deleted=1"; }
        }).catch(function (err) {
          b.disabled = false; note.className = "action-note error"; note.textContent = err.message;
        });
      });
    });
  });

  // ---- tags --------------------------------------------------------------------------------
  var tagList = document.getElementById("tag-list"), tagError = document.getElementById("tag-error");
  function renderTags(tags) {
    tagList.innerHTML = "";
    tags.forEach(function (t) {
      var span = document.createElement("span"); span.className = "tag removable"; span.setAttribute("data-tag", t);
      span.textContent = t;
      var x = document.createElement("button"); x.type = "button"; x.className = "tag-x"; x.textContent = "×";
      x.setAttribute("aria-label", "Remove tag " + t); x.setAttribute("data-remove", t);
      span.appendChild(x); tagList.appendChild(span);
    });
    initial.tags = tags;
    document.dispatchEvent(new CustomEvent("nnt:tags", { detail: tags }));
  }
  function tagCall(method, tag) {
    tagError.textContent = "";
    return NNT.api(method, "/api/simulations/" + simId + "/tags", { tag: tag })
      .then(function (data) { renderTags(data.tags); })
      .catch(function (err) { tagError.textContent = err.message; });
  }
  document.getElementById("tag-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var input = document.getElementById("tag-input");
    var tag = input.value.trim();
    if (!tag) { tagError.textContent = "type a tag first"; return; }
    tagCall("POST", tag).then(function () { input.value = ""; });
  });
  tagList.addEventListener("click", function (ev) {
    var t = ev.target.getAttribute && ev.target.getAttribute("data-remove");
    if (t) { tagCall("DELETE", t); }
  });

  // ---- raw points --------------------------------------------------------------------------
  document.querySelectorAll(".js-raw").forEach(function (box) {
    box.addEventListener("change", function () {
      var raw = box.checked;
      document.querySelectorAll(".js-raw").forEach(function (o) { o.checked = raw; });
      NNT.api("GET", "/api/simulations/" + simId + "/metrics" + (raw ? "" : "?max_points=1000")).then(function (data) {
        store.raw = raw; load(data);
        if (store.needsTimeline()) { loadTimeline().then(function () { notify("reset", null); }); } else { notify("reset", null); }
      });
    });
  });

  // ---- socket ------------------------------------------------------------------------------
  var conn = document.getElementById("live-conn");
  NNT.socket.on("*", function () { window.nntLive.frames += 1; });
  NNT.socket.on("epochs", function (msg) { if (msg.simulation_id === simId) { addPoints(msg.points || []); } });
  NNT.socket.on("status", function (msg) { if (msg.simulation_id === simId) { setStatus(msg.status || {}); } });
  function lastSeen() {
    var last = -1;
    Object.keys(store.series).forEach(function (n) { last = Math.max(last, store.lastEpoch(n)); });
    return last;
  }
  NNT.socket.connect(chart.getAttribute("data-ws-path"), function (state) {
    conn.className = "conn " + (state === "on" ? "on" : "off");
    conn.textContent = state === "on" ? "live" : state === "refused" ? "not allowed" : "reconnecting…";
  }, lastSeen);
})();
