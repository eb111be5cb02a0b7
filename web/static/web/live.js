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
  var traceIndex = {};
  function isLoss(name) { return name.indexOf("loss") !== -1; }
  function baseName(name) { return name.indexOf("val_") === 0 ? name.slice(4) : name; }
  function colorOf(name, names) {
    var bases = [];
    names.forEach(function (n) { if (bases.indexOf(baseName(n)) === -1) { bases.push(baseName(n)); } });
    var i = bases.indexOf(baseName(name));
    return NNT.COLORS[(i === -1 ? bases.length : i) % NNT.COLORS.length];
  }
  function newTrace(name, xs, ys, names) {
    var color = colorOf(name, names);
    return { name: name, x: xs, y: ys, mode: "lines+markers", type: "scatter",
             line: { color: color, width: 2, dash: name.indexOf("val_") === 0 ? "dash" : "solid" },
             marker: { size: 4, color: color }, yaxis: isLoss(name) ? "y" : "y2",
             hovertemplate: name + " · epoch %{x}: %{y:.4g}<extra></extra>" };
  }
  function count() {
    var total = 0;
    Object.keys(traceIndex).forEach(function (n) { total += store.series[n].x.length; });
    chart.setAttribute("data-points", String(total));
    document.getElementById("chart-count").textContent = total ? total + " points" + (store.raw ? " (raw)" : "") : "";
    document.getElementById("chart-empty").classList.toggle("hidden", total > 0);
  }
  function drawOverview() {
    traceIndex = {};
    var names = Object.keys(store.series).filter(function (n) { return !HIDDEN[n]; }).sort();
    var traces = names.map(function (name, i) {
      traceIndex[name] = i;
      return newTrace(name, store.series[name].x.slice(), store.series[name].y.slice(), names);
    });
    var layout = NNT.layout({
      height: 440, margin: { l: 56, r: 16, t: 10, b: 44 },
      grid: { rows: 2, columns: 1, subplots: [["xy"], ["xy2"]], roworder: "top to bottom" },
      xaxis: { title: { text: "epoch" }, gridcolor: "#e2e8f0", zeroline: false, rangemode: "tozero" },
      yaxis: { title: { text: "loss" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0.55, 1] },
      yaxis2: { title: { text: "metrics" }, gridcolor: "#e2e8f0", zeroline: false, domain: [0, 0.45], anchor: "x" },
      legend: { orientation: "h", y: -0.14 },
    });
    Plotly.react(chart, traces, layout, NNT.PLOT_CONFIG);
    count();
  }
  drawOverview();
  store.onChange(function (type, fresh) {
    if (type === "reset") { drawOverview(); return; }
    var idx = [], ext = { x: [], y: [] };
    Object.keys(fresh).forEach(function (name) {
      if (HIDDEN[name]) { return; }
      if (traceIndex[name] === undefined) {
        traceIndex[name] = chart.data.length;
        Plotly.addTraces(chart, newTrace(name, fresh[name].x.slice(), fresh[name].y.slice(), Object.keys(traceIndex)));
      } else {
        idx.push(traceIndex[name]); ext.x.push(fresh[name].x); ext.y.push(fresh[name].y);
      }
    });
    if (idx.length) { Plotly.extendTraces(chart, ext, idx); }
    count();
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
    points.forEach(function (p) {
      var vals = p.values || {};
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
    if (Object.keys(fresh).length) { notify("append", fresh); }
    if (points.length) { setEpoch(points[points.length - 1].epoch, null); }
  }

  // ---- header: status, progress, buttons ---------------------------------------------------
  var toolbar = document.getElementById("sim-toolbar");
  var note = document.getElementById("action-note");
  var ALLOWED = { pause: ["queued", "starting", "running"], resume: ["paused", "stopped"],
                  stop: ["queued", "starting", "running", "paused"] };
  function setButtons(status) {
    toolbar.setAttribute("data-status", status);
    toolbar.querySelectorAll("[data-action]").forEach(function (b) {
      var ok = ALLOWED[b.getAttribute("data-action")];
      b.disabled = ok ? ok.indexOf(status) === -1 : status === "deleted";
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
    if (st.status) {
      if (st.status !== badge.textContent) { note.textContent = ""; }   // the run answered
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
  // Notes that wait for the first epoch say so only while the run can still log one.
  function setEnded(status) {
    document.querySelectorAll("[data-waiting][data-ended]").forEach(function (el) {
      el.textContent = ENDED[status] ? el.getAttribute("data-ended").replace("{status}", status)
                                     : el.getAttribute("data-waiting");
    });
  }
  setButtons(initial.status);

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
        store.raw = raw; load(data); notify("reset", null);
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
