// The run page's Download tab: each export's size before it is downloaded (GET …/export/estimate),
// a confirmation above CONFIRM_BYTES, and the trained model's link once the run has one.
(function () {
  "use strict";
  var CONFIRM_BYTES = 500e6;
  var panel = document.getElementById("export-panel");
  if (!panel || !window.NNT) { return; }
  var sid = panel.getAttribute("data-simulation-id");
  var sizes = null;

  // 1536 -> "1.5 kB" (decimal units, as browsers and the CLI show sizes).
  function human(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return (i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }

  function plural(n, what) { return n + " " + what + (n === 1 ? "" : "s"); }

  function show(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; }
  }

  function refresh() {
    NNT.api("GET", "/api/simulations/" + sid + "/export/estimate").then(function (got) {
      sizes = got;
      show("export-summary-size", "(≈ " + human(got.summary_bytes) + ")");
      show("export-full32-size", "(≈ " + human(got.full_bytes.float32) + ")");
      show("export-full16-size", "(≈ " + human(got.full_bytes.float16) + ")");
      show("export-counts", plural(got.epochs, "logged epoch") + " · " +
           plural(got.tensors, "variable") + " with recorded values");
      var model = document.getElementById("download-model");
      var ready = got.model_bytes !== null && got.model_bytes !== undefined;
      model.classList.toggle("hidden", !ready);
      show("model-size", ready ? "(" + human(got.model_bytes) + ")" : "");
      show("model-note", ready ? "" : "The trained model is kept when the run finishes all its " +
           "epochs (model.keras, for keras.saving.load_model).");
    }).catch(function (err) {
      show("export-counts", "Sizes unavailable: " + err.message);
    });
  }

  document.querySelectorAll("a[data-export-dtype]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var bytes = sizes ? sizes.full_bytes[link.getAttribute("data-export-dtype")] : null;
      if (bytes && bytes > CONFIRM_BYTES &&
          !window.confirm("This download is about " + human(bytes) + ". Download it?")) {
        event.preventDefault();
      }
    });
  });
  var tab = document.getElementById("tab-download");
  if (tab) { tab.addEventListener("click", refresh); }
  refresh();
})();
