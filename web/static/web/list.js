// Runs table: live status and progress from the user's WebSocket group (staff: every user's),
// rows that follow tag and name changes, new runs inserted as they are created (an unknown id
// costs one GET of that row, never a poll), metric, health and duration cells refreshed when a
// visible run logs an epoch (one GET of the visible page at most every 2 s), the health chip
// when a run's diagnoses change; per-row and bulk
// lifecycle actions with confirmation, "Overlay" of the ticked runs, filters that apply on change.
(function () {
  "use strict";
  var NNT = window.NNT;
  if (!NNT || !NNT.runs) { return; }
  var table = document.getElementById("simulations");
  window.nntList = { frames: 0, fetched: 0, inserted: 0, refreshed: 0 };

  function rows() { return Array.prototype.slice.call(table.tBodies[0].rows); }
  function rowOf(id) { return table.querySelector('tr[data-simulation-id="' + CSS.escape(String(id)) + '"]'); }
  function setButtons(row) {
    var status = row.getAttribute("data-status");
    row.querySelectorAll("[data-action]").forEach(function (b) {
      b.disabled = !NNT.lifecycle.allowed(b.getAttribute("data-action"), status);   // schemas/lifecycle.py
    });
  }
  rows().forEach(setButtons);

  function update(row, st) {
    var before = Number(row.getAttribute("data-epoch") || 0);
    if (st.status && st.status !== row.getAttribute("data-status")) { refreshSoon(); }
    if (st.epoch && st.epoch > before) { row.setAttribute("data-epoch", String(st.epoch)); refreshSoon(); }
    if (st.status) {
      row.setAttribute("data-status", st.status);
      var badge = row.querySelector('[data-role="status"]');
      badge.textContent = st.status; badge.className = "badge status-" + st.status;
      setButtons(row);
      if (st.status === "deleted") { row.classList.add("leaving"); setTimeout(function () { row.remove(); selection(); count(-1); }, 600); return; }
    }
    var label = row.querySelector('[data-role="epochs"]');
    var parts = label.textContent.split("/");
    var epoch = st.epoch !== undefined && st.epoch !== null && st.epoch > 0 ? st.epoch : Number(parts[0]);
    var total = st.total_epochs || Number(parts[1]);
    label.textContent = epoch + " / " + total;
    var pct = total > 0 ? Math.min(100, Math.round(100 * epoch / total)) : 0;
    var bar = row.querySelector(".progress");
    bar.setAttribute("aria-valuenow", String(pct));
    bar.firstElementChild.style.width = pct + "%";
    row.title = NNT.headline(st.message);
    var reason = row.querySelector('[data-role="reason"]');
    if (st.status && reason) {   // a failed run says why in one line under its status
      var why = st.status === "failed" ? NNT.headline(st.message || st.error) : "";
      reason.textContent = why; reason.title = why; reason.classList.toggle("hidden", !why);
    }
    if (st.name !== undefined || st.tags !== undefined) { describe(row, st); }
  }

  // ---- rows: building and inserting new ones ---------------------------------------------------
  var describe = NNT.runs.describe;
  function build(sim) {
    var row = document.getElementById("row-template").content.firstElementChild.cloneNode(true);
    row.setAttribute("data-simulation-id", sim.id);
    row.setAttribute("data-status", sim.status);
    row.setAttribute("data-epoch", "0");
    row.querySelector(".row-check").value = sim.id;
    row.querySelector('[data-role="name"]').href = "/simulations/" + sim.id + "/";
    row.setAttribute("data-created", sim.created_at || "");
    NNT.runs.fill(row, sim);
    NNT.runs.apply(row);
    update(row, { status: sim.status, epoch: sim.epoch, total_epochs: sim.total_epochs, message: sim.message, error: sim.error });
    return row;
  }
  var filter = { q: (table.getAttribute("data-filter-q") || "").toLowerCase(), status: table.getAttribute("data-filter-status"),
                 tag: table.getAttribute("data-filter-tag"), experiment: table.getAttribute("data-filter-experiment") };
  function matches(sim) {   // the server's filters (listing.search), for one row
    if (filter.status ? sim.status !== filter.status : sim.status === "deleted") { return false; }
    if (filter.tag && (sim.tags || []).indexOf(filter.tag) === -1) { return false; }
    if (filter.experiment && sim.experiment_id !== filter.experiment) { return false; }
    if (filter.q) {
      var text = [sim.name || ""].concat([(sim.tags || []).join(" ")]).join("\n").toLowerCase();
      if (text.indexOf(filter.q) === -1) { return false; }
    }
    return true;
  }
  function count(delta) {
    var el = document.getElementById("list-count");
    var n = Number(el.getAttribute("data-count") || 0) + delta, filtered = el.getAttribute("data-filtered") === "1";
    el.setAttribute("data-count", String(n));
    var from = Number(el.getAttribute("data-from") || 1) || 1, to = Math.min(n, Number(el.getAttribute("data-to") || 0) + delta);
    el.setAttribute("data-to", String(to));
    el.textContent = n ? Math.max(1, from).toLocaleString("en-US") + "–" + Math.max(to, 1).toLocaleString("en-US") + " of " + n.toLocaleString("en-US") +
      " run" + (n === 1 ? "" : "s") + (filtered ? " matching" : "") : "";
    var range = document.getElementById("pager-range");
    if (range) { range.textContent = el.textContent.replace(/ runs?( matching)?$/, ""); }
  }
  function insert(sim) {
    if (rowOf(sim.id) || !matches(sim)) { return; }
    if (table.getAttribute("data-live-insert") !== "1") { document.getElementById("new-runs").classList.remove("hidden"); return; }
    var body = table.tBodies[0], row = build(sim), before = body.firstElementChild;
    // newest first; runs of one experiment (one timestamp) keep the order they arrive in
    var at = Date.parse(sim.created_at) || Date.now();
    while (before && Date.parse(before.getAttribute("data-created")) >= at) { before = before.nextElementSibling; }
    body.insertBefore(row, before);
    document.getElementById("table-box").classList.remove("hidden");
    var empty = document.getElementById("list-empty"); if (empty) { empty.remove(); }
    row.classList.add("pending"); setTimeout(function () { row.classList.remove("pending"); }, 1500);
    window.nntList.inserted += 1;
    count(1);
    refreshSoon();   // the row's hyperparameters come with the API's item, not the push
  }
  var fetching = {}, fetchedAt = {};
  function fetchRow(id, status) {   // one GET per unknown run and status it reaches, never a poll
    if (fetching[id] || fetchedAt[id] === status) { return; }
    if (filter.status && status !== filter.status) { return; }   // cannot match: no need to ask
    fetching[id] = true; fetchedAt[id] = status;
    window.nntList.fetched += 1;
    NNT.api("GET", "/api/simulations/" + id).then(insert).catch(function () { /* gone or not ours */ })
      .then(function () { delete fetching[id]; });
  }

  // ---- actions -----------------------------------------------------------------------------
  function send(action, ids) {
    if (ids.length === 1) {
      var url = "/api/simulations/" + ids[0] + (action === "delete" ? "" : "/" + action);
      return NNT.api(action === "delete" ? "DELETE" : "POST", url);
    }
    return NNT.api("POST", "/api/simulations/bulk", { ids: ids, action: action });
  }
  function ask(action, n) {
    var what = n === 1 ? "this simulation" : n + " simulations";
    if (action === "delete") { return NNT.confirm("Delete " + what + "?", "Recorded metrics and tensors are removed. This cannot be undone.", "Delete"); }
    if (action === "stop") { return NNT.confirm("Stop " + what + "?", "A checkpoint is saved; Resume continues from there.", "Stop"); }
    return Promise.resolve(true);
  }
  function act(action, ids, note, buttons) {
    return ask(action, ids.length).then(function (ok) {
      if (!ok) { return; }
      buttons.forEach(function (b) { b.disabled = true; });
      if (note) { note.className = "action-note muted"; note.textContent = action + " sent to " + ids.length + "…"; }
      return send(action, ids).then(function () {
        if (note) { note.textContent = action + " requested for " + ids.length + " · rows update when the runs answer"; }
        ids.forEach(function (id) { var r = rowOf(id); if (r) { r.classList.add("pending"); setTimeout(function () { r.classList.remove("pending"); }, 1500); } });
      }).catch(function (err) {
        if (note) { note.className = "action-note error"; note.textContent = err.message; } else { window.alert(err.message); }
      }).then(function () { rows().forEach(setButtons); });
    });
  }
  if (table) {
    table.addEventListener("click", function (ev) {
      var b = ev.target.closest && ev.target.closest("[data-action]");
      if (!b) { return; }
      var row = b.closest("tr");
      act(b.getAttribute("data-action"), [row.getAttribute("data-simulation-id")], document.getElementById("bulk-note"), [b]);
    });
  }

  // ---- selection and bulk ------------------------------------------------------------------
  var bar = document.getElementById("bulk-bar");
  function checked() { return rows().filter(function (r) { return r.querySelector(".row-check").checked; }); }
  function selection() {
    var sel = checked();
    bar.classList.toggle("hidden", sel.length === 0);
    document.getElementById("bulk-count").textContent = sel.length + " selected";
    var overlay = document.getElementById("bulk-overlay");
    overlay.textContent = "Overlay (" + sel.length + ")";
    overlay.href = "/simulations/overlay/?ids=" + sel.map(function (r) { return r.getAttribute("data-simulation-id"); }).join(",");
    rows().forEach(function (r) { r.classList.toggle("selected", r.querySelector(".row-check").checked); });
    var all = document.getElementById("select-all");
    if (all) { all.checked = sel.length > 0 && sel.length === rows().length; all.indeterminate = sel.length > 0 && sel.length < rows().length; }
  }
  if (table) {
    table.addEventListener("change", function (ev) { if (ev.target.classList.contains("row-check")) { selection(); } });
    document.getElementById("select-all").addEventListener("change", function (ev) {
      rows().forEach(function (r) { r.querySelector(".row-check").checked = ev.target.checked; });
      selection();
    });
  }
  bar.querySelectorAll("[data-bulk]").forEach(function (b) {
    b.addEventListener("click", function () {
      var ids = checked().map(function (r) { return r.getAttribute("data-simulation-id"); });
      if (ids.length) { act(b.getAttribute("data-bulk"), ids, document.getElementById("bulk-note"), []); }
    });
  });
  document.getElementById("bulk-clear").addEventListener("click", function () {
    rows().forEach(function (r) { r.querySelector(".row-check").checked = false; });
    selection();
  });

  // ---- filters apply on change -------------------------------------------------------------
  var filters = document.getElementById("list-filters");
  if (filters) {
    filters.querySelectorAll("select").forEach(function (s) { s.addEventListener("change", function () { filters.submit(); }); });
  }

  // ---- metric cells: the visible page again when a run on it logs an epoch (throttled) --------
  var REFRESH_MS = 2000, timer = null, inflight = false, again = false, last = 0;
  function refreshSoon() {
    if (inflight) { again = true; return; }
    if (timer) { return; }
    timer = setTimeout(refresh, Math.max(0, last + REFRESH_MS - Date.now()));
  }
  function refresh() {
    timer = null; inflight = true; last = Date.now();
    var q = table.getAttribute("data-api-query"), size = table.getAttribute("data-page-size") || "50";
    var offset = Math.max(0, Number(table.getAttribute("data-offset") || 0));
    var url = "/api/simulations?" + (q ? q + "&" : "") + "offset=" + offset + "&limit=" + size;
    NNT.api("GET", url).then(function (items) {
      window.nntList.refreshed += 1;
      (items || []).forEach(function (item) {
        var row = rowOf(item.id);
        if (!row) { return; }
        // a push may be ahead of the row the API read: progress never goes back on a refresh
        var epoch = Math.max(item.epoch || 0, Number(row.getAttribute("data-epoch") || 0));
        var total = Math.max(item.total_epochs || 0, epoch);
        NNT.runs.fill(row, item);
        row.setAttribute("data-epoch", String(epoch));
        update(row, { status: item.status, epoch: epoch, total_epochs: total, message: item.message, error: item.error });
      });
    }).catch(function () { /* the next epoch tries again */ }).then(function () {
      inflight = false;
      if (again) { again = false; refreshSoon(); }
    });
  }

  // ---- live --------------------------------------------------------------------------------
  var conn = document.getElementById("live-conn");
  NNT.socket.on("*", function () { window.nntList.frames += 1; });
  NNT.socket.on("status", function (msg) {
    var row = rowOf(msg.simulation_id);
    if (row) { update(row, msg.status || {}); return; }
    if (msg.status && msg.status.status && msg.status.status !== "deleted") { fetchRow(msg.simulation_id, msg.status.status); }
  });
  NNT.socket.on("diagnosis", function (msg) {   // the run's active diagnoses changed
    var row = rowOf(msg.simulation_id), td = row && row.querySelector('td[data-col="health"]');
    if (!td) { return; }
    var health = Object.assign({}, msg.health || {}, { diagnoses: msg.diagnoses || [] });
    NNT.runs.health(td, { health: health });
  });
  NNT.socket.on("simulation", function (msg) {   // tags or name changed, or a run was created
    var sim = msg.simulation || {}, row = rowOf(msg.simulation_id);
    if (row) { describe(row, sim); return; }
    insert(sim);
  });
  NNT.socket.connect("/ws/simulations/", function (state) {
    conn.className = "conn " + (state === "on" ? "on" : "off");
    conn.textContent = state === "on" ? "live" : state === "refused" ? "not allowed" : "reconnecting…";
  });
})();
