// Simulation list: live status and progress from the user's WebSocket group, per-row and bulk
// lifecycle actions with confirmation, filters that apply on change. Never polls.
(function () {
  "use strict";
  var NNT = window.NNT;
  if (!NNT) { return; }
  var table = document.getElementById("simulations");
  var ALLOWED = { pause: ["queued", "starting", "running"], resume: ["paused", "stopped"],
                  stop: ["queued", "starting", "running", "paused"] };
  window.nntList = { frames: 0 };

  function rows() { return table ? Array.prototype.slice.call(table.tBodies[0].rows) : []; }
  function rowOf(id) { return table ? table.querySelector('tr[data-simulation-id="' + id + '"]') : null; }
  function setButtons(row) {
    var status = row.getAttribute("data-status");
    row.querySelectorAll("[data-action]").forEach(function (b) {
      var ok = ALLOWED[b.getAttribute("data-action")];
      b.disabled = ok ? ok.indexOf(status) === -1 : status === "deleted";
    });
  }
  rows().forEach(setButtons);

  function update(row, st) {
    if (st.status) {
      row.setAttribute("data-status", st.status);
      var badge = row.querySelector('[data-role="status"]');
      badge.textContent = st.status; badge.className = "badge status-" + st.status;
      setButtons(row);
      if (st.status === "deleted") { row.classList.add("leaving"); setTimeout(function () { row.remove(); selection(); }, 600); return; }
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
    row.title = st.message || "";
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

  // ---- live --------------------------------------------------------------------------------
  var conn = document.getElementById("live-conn");
  NNT.socket.on("*", function () { window.nntList.frames += 1; });
  NNT.socket.on("status", function (msg) {
    var row = rowOf(msg.simulation_id);
    if (row) { update(row, msg.status || {}); return; }
    if (msg.status && msg.status.status !== "deleted") { document.getElementById("new-runs").classList.remove("hidden"); }
  });
  NNT.socket.connect("/ws/simulations/", function (state) {
    conn.className = "conn " + (state === "on" ? "on" : "off");
    conn.textContent = state === "on" ? "live" : state === "refused" ? "not allowed" : "reconnecting…";
  });
})();
