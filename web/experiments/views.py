"""The create-experiment page: form or JSON mode, one service call, errors beside their fields."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from web.errors import Invalid, KafkaUnavailable, PreflightUnavailable, TooLarge
from web.experiments import choices, form, kept
from web.simulations import experiments, storage, uploads

CONFIG_FILE_MAX = 2 * 1024 * 1024
DTYPES = ("float32", "float16")
SIMPLE = (
    *form.INT_FIELDS,
    *form.TEXT_FIELDS,
    "validation_split",
    "tags",
    *(f"dataset_{ds}_url" for ds in form.DATASETS),
    *(f"collect_{k}" for k in ("layers", "full_tensor_period", "probe_size", "dtype")),
    "early_stop_patience",
)


# The four files of a submission: API field -> the form's file input (kept ones: `kept_<field>`).
FILE_INPUTS = {"model": "model", **{f"dataset_{ds}": f"dataset_{ds}_file" for ds in form.DATASETS}}


def _merge(errors: dict[str, str], new: dict[str, str]) -> None:
    for key, message in new.items():
        errors.setdefault(key, message)


def _initial() -> tuple[dict[str, Any], dict[str, list[tuple[str, str]]], list[str]]:
    """Values of a fresh form: the schema's defaults."""
    d = form.defaults()
    values: dict[str, Any] = {k: d.get(k) if d.get(k) is not None else "" for k in SIMPLE}
    values.update(name="", tags="", dataset_train_url="")
    for key in ("layers", "full_tensor_period", "probe_size", "dtype"):
        value = d["collect"][key]
        values[f"collect_{key}"] = "" if value is None else value
    for flag in form.COLLECT_FLAGS:
        values[f"collect_{flag}"] = d["collect"][flag]
    values["early_stop"] = d["early_stop"]["enabled"]
    values["early_stop_patience"] = d["early_stop"]["patience"]
    rows = {
        "optimizers": [(o["optimizer"], "") for o in d["optimizers"]],
        "loss_functions": [(x["loss_function"], "") for x in d["loss_functions"]],
        "extra_metrics": [],
    }
    return values, rows, [str(r) for r in d["learning_rates"]]


def _posted(request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {k: request.POST.get(k, "") for k in SIMPLE}
    for flag in form.COLLECT_FLAGS:
        values[f"collect_{flag}"] = request.POST.get(f"collect_{flag}") in ("on", "true", "1")
    values["early_stop"] = request.POST.get("early_stop") in ("on", "true", "1")
    values["config_json"] = request.POST.get("config_json", "")
    return values


def _row_context(
    rows: dict[str, list[tuple[str, str]]], rates: list[str], errors: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, items in rows.items():
        out[key] = [
            {"name": n, "conf": c, "error": errors.get(f"{key}.{i}", "")}
            for i, (n, c) in enumerate(items)
        ]
    out["rates"] = [
        {"value": r, "error": errors.get(f"learning_rates.{i}", "")} for i, r in enumerate(rates)
    ]
    return out


def _render(
    request: HttpRequest,
    values: dict[str, Any],
    rows: dict[str, list[tuple[str, str]]],
    rates: list[str],
    errors: dict[str, str],
    mode: str,
    status: int = 200,
    kept_files: dict[str, kept.KeptFile] | None = None,
) -> HttpResponse:
    context = {
        "kept": {f: {"token": k.token, "label": k.label()} for f, k in (kept_files or {}).items()},
        "values": values,
        "errors": errors,
        "mode": mode,
        "form_error": errors.get("__all__"),
        "rows": _row_context(rows, rates, errors),
        "choices": choices,
        "example": json.dumps(choices.EXAMPLE, indent=2),
        "extensions": " ".join(storage.EXTENSIONS),
        "dtypes": DTYPES,
    }
    return render(request, "experiments/new.html", context, status=status)


def _config_text(request: HttpRequest, errors: dict[str, str]) -> str:
    upload = request.FILES.get("config_file")
    if upload is None:
        return request.POST.get("config_json", "")
    if upload.size and upload.size > CONFIG_FILE_MAX:
        errors["config"] = "The configuration file is larger than 2 MB."
        return ""
    try:
        return b"".join(upload.chunks()).decode()
    except TooLarge as exc:  # refused as the form was read: nothing of it was kept
        errors["config"] = exc.errors["config"]
        return ""
    except UnicodeDecodeError:
        errors["config"] = "The configuration file is not UTF-8 text."
        return ""


def _chosen(request: HttpRequest, errors: dict[str, str]) -> dict[str, Any]:
    """The submission's files: each one newly chosen, else the one kept from the last try."""
    out: dict[str, Any] = {}
    for field, name in FILE_INPUTS.items():
        upload = request.FILES.get(name)
        if upload is None:
            upload = kept.take(request.user, field, request.POST.get(f"kept_{field}", ""))
        if upload is not None:
            out[field] = upload
    # Kept files and new ones together (new ones alone were counted as they arrived).
    total, limit = sum(u.size or 0 for u in out.values()), uploads.total_limit()
    if total > limit.bytes and any(isinstance(u, kept.KeptFile) for u in out.values()):
        errors.setdefault(
            "__all__",
            f"the kept files and the new ones add up to {uploads.human(total)}, over the "
            f"{uploads.human(limit.bytes, exact=True)} limit ({limit.variable}); choose smaller files",
        )
    return out


def _keep(
    request: HttpRequest, chosen: dict[str, Any], model: dict[str, Any], files: dict[str, Any]
) -> dict[str, kept.KeptFile]:
    """Keep the good files of a refused submission for the next try (web.experiments.kept)."""
    good = {**files, **({"model": chosen["model"]} if model else {})}
    new = {
        f: u for f, u in good.items() if not isinstance(u, (kept.KeptFile, uploads.RefusedUpload))
    }
    still = [u for u in good.values() if isinstance(u, kept.KeptFile)]
    return kept.keep(request.user, new, still)


def _validate(
    request: HttpRequest,
    json_mode: bool,
    parsed: form.Parsed,
    errors: dict[str, str],
    chosen: dict[str, Any],
) -> tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """(raw config, model, good dataset uploads); errors collects every problem at once."""
    raw: dict[str, Any] | None = parsed.raw
    if json_mode:
        text = _config_text(request, errors)
        raw = None
        if "config" not in errors:
            try:
                raw = experiments.parse_config(text or "")
            except Invalid as exc:
                _merge(errors, exc.errors)
        if raw is not None:  # URLs typed above the JSON replace the ones inside it
            raw |= {
                f"dataset_{ds}": url
                for ds in form.DATASETS
                if (url := request.POST.get(f"dataset_{ds}_url", "").strip())
            }
    files: dict[str, Any] = {}
    for ds in form.DATASETS:
        upload = chosen.get(f"dataset_{ds}")
        if upload is not None:
            try:
                storage.extension(upload.name or "", f"dataset_{ds}")
                files[f"dataset_{ds}"] = upload
            except Invalid as exc:
                _merge(errors, exc.errors)
    model: dict[str, Any] = {}
    try:
        model = experiments.parse_model(chosen.get("model"))
    except (Invalid, TooLarge) as exc:
        _merge(errors, exc.errors)
    if raw is not None:
        try:
            experiments.check(raw, files)
        except Invalid as exc:
            _merge(errors, exc.errors)
    return raw, model, files


@login_required
def new(request: HttpRequest) -> HttpResponse:
    """GET: the form with the schema's defaults; POST: create and land on the new runs."""
    if request.method != "POST":
        values, rows, rates = _initial()
        return _render(request, values, rows, rates, {}, mode="form")
    json_mode = request.POST.get("mode") == "json"
    parsed = form.from_form(request.POST)
    errors: dict[str, str] = {} if json_mode else dict(parsed.errors)
    chosen = _chosen(request, errors)
    raw, model, files = _validate(request, json_mode, parsed, errors, chosen)
    status = 400
    too_large = uploads.refusal(request)  # files refused, unkept, while the form was read
    if too_large is not None:
        _merge(errors, too_large.errors)
        status = too_large.status
    if not errors and raw is not None:
        try:
            uploads.check_command(raw, model, files, request.user.get_username())
            uploads.check_storage(request.user, files)
            raw = experiments.attach_datasets(raw, files, settings.DATASETS_DIR)
            created = experiments.create(request.user, raw, model)
        except (Invalid, KafkaUnavailable, PreflightUnavailable, TooLarge) as exc:
            _merge(errors, exc.errors or {"__all__": exc.message})
            status = exc.status
        else:
            n = len(created.simulations)
            messages.success(
                request, f"Experiment created: {n} simulation{'s' if n != 1 else ''} queued."
            )
            for note in created.notes:
                messages.info(request, f"Pre-flight: {note}")
            kept.discard(request.user, [u for u in chosen.values() if isinstance(u, kept.KeptFile)])
            url = reverse("simulations:list") + f"?experiment={created.experiment_id}"
            return redirect(url)
    shown = form.form_errors(errors, json_mode)
    return _render(
        request,
        _posted(request),
        parsed.rows,
        parsed.rates,
        shown,
        mode="json" if json_mode else "form",
        status=status,
        kept_files=_keep(request, chosen, model, files),
    )
