// Run page: the diagnosis banner under the header (what is wrong with this run, fatal first) and
// its "Notify me" toggle. The server renders the banner on first load; live `diagnosis` updates
// (the run's whole active set) add, change and remove its items and the marks on the metric
// chart (live.js). An empty set leaves #diagnosis-banner without children and hides the box.
(function () {
  "use strict";
  var NNT = window.NNT;
  var box = document.getElementById("diagnoses"), banner = document.getElementById("diagnosis-banner");
  var toolbar = document.getElementById("sim-toolbar");
  if (!NNT || !box || !banner || !toolbar) { return; }
  var simId = toolbar.getAttribute("data-simulation-id");
  window.nntDiagnoses = { updates: 0 };

  function order(list) {   // fatal first, then by the epoch first seen
    return list.slice().sort(function (a, b) {
      return (a.severity === "fatal" ? 0 : 1) - (b.severity === "fatal" ? 0 : 1) || (a.first_epoch || 0) - (b.first_epoch || 0);
    });
  }
  function part(cls, text) {
    var el = document.createElement(cls === "diagnosis-title" ? "b" : "span");
    el.className = cls; el.textContent = text;
    return el;
  }
  function item(d) {
    var el = document.createElement("div");
    el.className = "diagnosis diagnosis-" + (d.severity === "fatal" ? "fatal" : "warning");
    el.setAttribute("data-problem", d.problem); el.setAttribute("data-severity", d.severity);
    var parts = [part("diagnosis-title", d.title || d.problem), part("diagnosis-summary", d.summary || ""),
                 part("diagnosis-fix", "Try: " + (d.fix || ""))];
    if (d.layers && d.layers.length) { parts.push(part("diagnosis-layers", "Layers: " + d.layers.join(", "))); }
    parts.push(part("diagnosis-since", "since epoch " + d.first_epoch));
    parts.forEach(function (p, i) { if (i) { el.appendChild(document.createTextNode(" ")); } el.appendChild(p); });
    return el;
  }
  function render(list) {
    var shown = order(list || []);
    banner.textContent = "";   // an empty banner has no element children
    shown.forEach(function (d) { banner.appendChild(item(d)); });
    box.classList.toggle("hidden", !shown.length);
    if (NNT.metrics && NNT.metrics.setDiagnoses) { NNT.metrics.setDiagnoses(shown); }
  }
  NNT.socket.on("diagnosis", function (msg) {
    if (msg.simulation_id !== simId) { return; }
    window.nntDiagnoses.updates += 1;
    render(msg.diagnoses || []);
  });

  // ---- "Notify me": the account's diagnosis alerts, switched here (Account: Alerts) ---------
  var toggle = document.getElementById("notify-me"), note = document.getElementById("notify-note");
  if (!toggle) { return; }
  toggle.addEventListener("change", function () {
    var level = toggle.checked ? "all" : "off";
    if (toggle.checked && window.Notification && Notification.permission === "default") {
      Notification.requestPermission();   // asked on the click that subscribes
    }
    toggle.disabled = true; note.textContent = "";
    NNT.api("PUT", "/api/accounts/me/alerts", { diagnoses: level }).then(function (data) {
      box.setAttribute("data-alerts", data.diagnoses);
      note.textContent = data.diagnoses === "off" ? "alerts off" : "alerts on for every new diagnosis of your runs";
      if (window.NNTAlerts) { window.NNTAlerts.set(data.diagnoses); }
    }).catch(function (err) {
      toggle.checked = !toggle.checked; note.textContent = err.message;
    }).then(function () { toggle.disabled = false; });
  });
})();
