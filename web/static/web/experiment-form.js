/* Create-experiment form: mode switch, repeatable rows, and the live grid-size preview.
   Everything here runs in the browser; the server validates again on submit. */
(function () {
  "use strict";
  var form = document.getElementById("experiment-form");
  if (!form) return;
  var $ = function (sel, root) { return (root || form).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || form).querySelectorAll(sel)); };
  var fileText = null;  // text of a chosen config file, which wins over the textarea

  function mode() { var r = $("input[name=mode]:checked"); return r ? r.value : "form"; }

  function filled(selector) {
    return $$(selector).filter(function (el) { return el.value.trim() !== ""; }).length;
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function fromForm() {
    var k = parseInt(($("#id_k_fold_validation") || {}).value, 10);
    return {
      optimizers: filled("input[name=optimizer]"),
      losses: filled("input[name=loss_function]"),
      rates: filled("input[name=learning_rate]"),
      folds: isNaN(k) ? 1 : k
    };
  }

  function listLength(value, fallback) {
    if (value === undefined || value === null) return fallback;
    return Array.isArray(value) ? value.length : 1;
  }

  function fromJson(text) {
    var cfg = JSON.parse(text);
    if (!cfg || typeof cfg !== "object" || Array.isArray(cfg)) throw new Error("the configuration must be a JSON object");
    var k = cfg.k_fold_validation !== undefined ? cfg.k_fold_validation : cfg["k-fold_validation"];
    return {
      optimizers: listLength(cfg.optimizers, 1),
      losses: listLength(cfg.loss_functions !== undefined ? cfg.loss_functions : cfg.loss_function, 1),
      rates: listLength(cfg.learning_rates, 1),
      folds: k === undefined || k === null ? 1 : parseInt(k, 10)
    };
  }

  function show(counts, problem) {
    var count = $("#preview-count"), unit = $("#preview-unit");
    var formula = $("#preview-formula"), warning = $("#preview-warning");
    if (problem) {
      count.textContent = "—"; unit.textContent = "simulations";
      formula.textContent = "optimizers × losses × learning rates × folds";
      warning.textContent = problem; warning.classList.remove("hidden");
      return;
    }
    var folds = counts.folds >= 1 ? counts.folds : 0;
    var total = counts.optimizers * counts.losses * counts.rates * folds;
    count.textContent = String(total);
    unit.textContent = total === 1 ? "simulation" : "simulations";
    formula.textContent = [plural(counts.optimizers, "optimizer", "optimizers"),
      plural(counts.losses, "loss", "losses"), plural(counts.rates, "learning rate", "learning rates"),
      plural(folds, "fold", "folds")].join(" × ");
    var note = "";
    if (!counts.optimizers) note = "Add at least one optimizer.";
    else if (!counts.losses) note = "Add at least one loss function.";
    else if (!counts.rates) note = "Add at least one learning rate.";
    else if (folds < 1) note = "K-fold validation must be 1 or more.";
    else if (total > 50) note = "That is a lot of runs: each one trains in its own process.";
    warning.textContent = note;
    warning.classList.toggle("hidden", !note);
    form.dataset.gridSize = String(total);
  }

  function update() {
    if (mode() === "form") { show(fromForm()); return; }
    var text = fileText !== null ? fileText : $("#id_config_json").value;
    if (!text.trim()) { show(null, "Paste or upload a configuration to see how many runs it creates."); return; }
    try { show(fromJson(text)); } catch (err) { show(null, "Not valid JSON yet: " + err.message); }
  }

  var timer = null;
  function soon() { clearTimeout(timer); timer = setTimeout(update, 80); }

  function setMode(value) {
    form.dataset.mode = value;
    $$("input[name=mode]").forEach(function (r) { r.checked = r.value === value; });
    update();
  }

  function addRow(kind) {
    var tpl = document.getElementById("tpl-" + kind);
    var rows = document.getElementById("rows-" + kind);
    if (!tpl || !rows) return;
    var row = tpl.content.firstElementChild.cloneNode(true);
    rows.appendChild(row);
    row.querySelector("input").focus();
    update();
  }

  function conf(text) {
    if (!text.trim()) return {};
    try { return JSON.parse(text); } catch (err) { return text; }
  }

  function rowsOf(kind, confName, key) {
    return $$("[data-row=" + kind + "]").map(function (row) {
      var name = row.querySelector("input[name=" + kind + "]").value.trim();
      var item = {}; item[key] = name; item.conf = conf(row.querySelector("input[name=" + confName + "]").value);
      return name ? item : null;
    }).filter(Boolean);
  }

  function value(name) { var el = $("[name=" + name + "]"); return el ? el.value.trim() : ""; }
  function number(name) { var v = value(name); return v === "" ? undefined : Number(v); }
  function list(name) { return value(name).split(/[,\n]/).map(function (s) { return s.trim(); }).filter(Boolean); }

  function formAsJson() {
    var cfg = {
      name: value("name") || undefined,
      dataset_train: value("dataset_train_url") || undefined,
      dataset_test: value("dataset_test_url") || undefined,
      dataset_val: value("dataset_val_url") || undefined,
      batch_size: number("batch_size"), total_epochs: number("total_epochs"), epoch_period: number("epoch_period"),
      optimizers: rowsOf("optimizer", "optimizer_conf", "optimizer"),
      loss_functions: rowsOf("loss_function", "loss_conf", "loss_function"),
      learning_rates: $$("input[name=learning_rate]").map(function (el) { return el.value.trim(); })
        .filter(Boolean).map(Number),
      k_fold_validation: number("k_fold_validation"), k_fold_tag: value("k_fold_tag") || undefined,
      extra_metrics: rowsOf("metric", "metric_conf", "metric"),
      tags: list("tags"), validation_split: number("validation_split")
    };
    ["train", "test", "val"].forEach(function (ds) {
      ["feature", "label"].forEach(function (part) {
        var key = ds + "_" + part + "_name"; if (value(key)) cfg[key] = value(key);
      });
    });
    if (value("label_column")) cfg.label_column = value("label_column");
    var layers = list("collect_layers");
    cfg.collect = {
      weights: $("[name=collect_weights]").checked, biases: $("[name=collect_biases]").checked,
      gradients: $("[name=collect_gradients]").checked, activations: $("[name=collect_activations]").checked,
      layers: layers.length ? layers : null,
      full_tensor_period: number("collect_full_tensor_period"), dtype: value("collect_dtype"),
      probe_size: number("collect_probe_size")
    };
    var early = $("[name=early_stop]");
    cfg.early_stop = early && early.checked
      ? { enabled: true, patience: number("early_stop_patience") } : { enabled: false };
    return JSON.stringify(cfg, null, 2);
  }

  form.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add]");
    if (add) { addRow(add.getAttribute("data-add")); return; }
    var remove = event.target.closest("[data-remove]");
    if (remove) {
      var rows = remove.closest(".rows");
      remove.closest("[data-row]").remove();
      if (!rows.querySelector("[data-row]")) rows.textContent = "";  // lets CSS show the empty hint
      update();
    }
  });
  form.addEventListener("input", soon);
  // A file kept from the last try (web/experiments/kept.py) is replaced by one chosen now.
  function replaceKept(input) {
    var row = input.closest(".field, .dataset-row"), note = row && row.querySelector("[data-kept]");
    if (note) { note.classList.toggle("replaced", !!(input.files && input.files.length)); }
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "mode") { setMode(event.target.value); return; }
    if (event.target.type === "file") { replaceKept(event.target); }
    if (event.target.id === "id_config_file") {
      var file = event.target.files && event.target.files[0];
      fileText = null;
      if (!file) { update(); return; }
      var reader = new FileReader();
      reader.onload = function () { fileText = String(reader.result); update(); };
      reader.readAsText(file);
      return;
    }
    soon();
  });
  $("#json-example").addEventListener("click", function () {
    $("#id_config_json").value = JSON.stringify(JSON.parse($("#json-example-data").textContent), null, 2);
    update();
  });
  $("#json-from-form").addEventListener("click", function () {
    $("#id_config_json").value = formAsJson();
    update();
  });
  form.addEventListener("submit", function () {
    var button = $("button[type=submit]");
    button.disabled = true; button.textContent = "Uploading…";
  });
  window.addEventListener("pageshow", function () {  // back button: the page may come from cache
    var button = $("button[type=submit]");
    button.disabled = false; button.textContent = "Create experiment";
  });
  setMode(mode());
  window.nntCreateForm = { update: update, formAsJson: formAsJson };
})();
