"""Size limits of a submission, enforced while the request is read, before anything is stored.

Three layers, each naming the limit and its variable in a 413:
- the request body: `body_cap` per path, applied by the web server as the headers arrive
  (web.server) and by `RequestSizeLimit` for any other server;
- each file, as Django parses the multipart body: `LimitedUploadHandler`, the first upload
  handler, counts every part and passes nothing of one past its limit to the handlers that
  store (memory, then a temp file in the private $NNT_HOME/tmp); the part becomes a
  `RefusedUpload` that cannot be read, and `check` / `refusal` turn it into the 413;
- the `create` command: `check_command` refuses an experiment whose command would not fit in
  one Kafka message (the web producer's and the broker's limit), before any file is written;
- the account: `check_storage` refuses datasets that would take the user past their
  max_storage_bytes (a 413 naming it and the usage), before any file is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse

from schemas import topics
from web.errors import TooLarge

REFUSED_ATTR = "_nnt_refused_uploads"
JSON_FIELDS = ("model", "config_file")
DATASET_FIELDS = tuple(
    f"dataset_{ds}{suffix}" for ds in ("train", "test", "val") for suffix in ("", "_file")
)
# The form's file inputs are named after the API's fields, plus `_file`.
ERROR_KEYS = {"config_file": "config"} | {
    f"dataset_{ds}_file": f"dataset_{ds}" for ds in ("train", "test", "val")
}
FRAMING_BYTES = 1024 * 1024  # multipart boundaries and part headers
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes
COMMAND_HEADROOM = 4096  # the command's envelope (ids, issuer, time, signature), and the check


def human(size: float, exact: bool = False) -> str:
    """`41943040` → `40.0 MiB` (a limit, `exact`: `40 MiB`)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    if unit == "B":
        return f"{int(size)} B"
    text = f"{size:.1f}"
    return f"{text.removesuffix('.0') if exact else text} {unit}"


@dataclass(frozen=True)
class Limit:
    """A size limit and the variable that sets it."""

    bytes: int
    variable: str

    def over(self, size: int) -> str:
        """The message for `size` bytes over this limit."""
        return f"{human(size)} is over the {human(self.bytes, exact=True)} limit ({self.variable})"


def file_limit(field: str) -> Limit | None:
    """The limit of one uploaded file by its field; None: a field no view reads."""
    if field in JSON_FIELDS:
        return Limit(settings.NNT_MAX_MODEL_BYTES, "NNT_MAX_MODEL_BYTES")
    if field in DATASET_FIELDS:
        return Limit(settings.NNT_MAX_UPLOAD_BYTES, "NNT_MAX_UPLOAD_BYTES")
    return None


def total_limit() -> Limit:
    """The limit of all files of one submission together."""
    return Limit(settings.NNT_MAX_EXPERIMENT_UPLOAD_BYTES, "NNT_MAX_EXPERIMENT_UPLOAD_BYTES")


FIXES = {
    "NNT_MAX_UPLOAD_BYTES": "give a smaller file, or its http(s) URL in the configuration",
    "NNT_MAX_MODEL_BYTES": "upload the output of model.to_json() (it holds no weights)",
    "NNT_MAX_EXPERIMENT_UPLOAD_BYTES": "give the large datasets as http(s) URLs instead",
}


class RefusedUpload(UploadedFile):
    """A file part past its limit: only its name and size were kept. Reading it raises the 413,
    so no code path can store it by mistake."""

    def __init__(self, field: str, name: str | None, size: int, message: str) -> None:
        super().__init__(file=None, name=name, size=size)
        self.field = field
        self.message = message

    def chunks(self, chunk_size: int | None = None) -> Any:
        """Never: the file was not kept."""
        raise TooLarge(f"{self.field}: {self.message}", {self.field: self.message})

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        """Never: the file was not kept."""
        return self.chunks()  # type: ignore[no-any-return]

    def __bool__(self) -> bool:
        """Present (Django's File is falsy without a name, and the parser skips falsy files)."""
        return True

    def open(self, mode: str | None = None) -> RefusedUpload:
        """Nothing to open."""
        return self

    def close(self) -> None:
        """Nothing to close."""


class LimitedUploadHandler(FileUploadHandler):
    """The first upload handler: counts each file part and the submission's total; the bytes
    of a part past its limit (and of fields no view reads) reach no later handler."""

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: Any, boundary: Any, encoding: Any = None
    ) -> None:
        """A new request: nothing counted yet."""
        self.total = 0
        self.total_limit = total_limit()
        setattr(self.request, REFUSED_ATTR, {})

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        """A new part: its own count."""
        super().new_file(field_name, *args, **kwargs)
        self.size = 0
        self.limit = file_limit(field_name)
        self.over_total = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        """Pass the chunk on while the part and the total are within their limits."""
        self.size += len(raw_data)
        self.total += len(raw_data)
        if self.limit is None or self.size > self.limit.bytes:
            return None
        if self.total > self.total_limit.bytes:
            self.over_total = True
            return None
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        """A refused part becomes a RefusedUpload; others go on to the storing handlers."""
        if self.limit is None:
            return None  # a later handler completes it empty: nothing of it was kept
        if self.size > self.limit.bytes:
            message = f"{self.limit.over(self.size)}; {FIXES[self.limit.variable]}"
        elif self.over_total:
            message = (
                f"the files of this submission add up to {human(self.total)}, over the "
                f"{human(self.total_limit.bytes, exact=True)} limit "
                f"({self.total_limit.variable}); {FIXES[self.total_limit.variable]}"
            )
        else:
            return None
        field = self.field_name or ""
        key = ERROR_KEYS.get(field, field)
        getattr(self.request, REFUSED_ATTR).setdefault(key, message)
        return RefusedUpload(key, self.file_name, self.size, message)


def refusal(request: HttpRequest) -> TooLarge | None:
    """The 413 owed for the files refused while this request was parsed, if any (parses
    nothing itself)."""
    refused: dict[str, str] = getattr(request, REFUSED_ATTR, None) or {}
    if not refused:
        return None
    detail = "; ".join(f"{field}: {message}" for field, message in refused.items())
    return TooLarge(f"upload too large: {detail}", dict(refused))


def check(request: HttpRequest) -> None:
    """Parse the upload (if not yet) and raise its 413 if a file was refused."""
    request.FILES  # noqa: B018 - parsing runs the limited handler
    found = refusal(request)
    if found is not None:
        raise found


def message_limit() -> int:
    """Largest message the web may send to Kafka: its producer's `message.max.bytes` (the
    librdkafka default when unset) and never more than the broker takes."""
    from web.simulations.commands import producer_config

    config = producer_config(
        settings.NNT_KAFKA_BOOTSTRAP, settings.NNT_KAFKA_TIMEOUT_S, settings.NNT_KAFKA_SECURITY
    )
    producer = int(config.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES))
    return min(producer, topics.MAX_MESSAGE_BYTES)


def check_command(
    raw: dict[str, Any], model: dict[str, Any], files: dict[str, Any], username: str
) -> None:
    """413 naming `model` (or `config`) when the experiment's `create` command would not fit in
    one Kafka message; call after validation, before any file is stored."""
    from web.simulations import experiments, storage

    stand_ins = {  # what the stored references will be: `stored:<sha256><ext>`
        field: f"stored:{'0' * 64}{storage.extension(upload.name or '', field)}"
        for field, upload in files.items()
        if upload is not None
    }
    config = experiments.validate(raw | stand_ins)
    # The command's `experiment` (web.simulations.commands.create_command) and its envelope:
    # type, ids, issuer, time, signature.
    experiment = config.model_dump(mode="json") | {"model": model}
    body = len(json.dumps(experiment, ensure_ascii=False, separators=(",", ":")).encode())
    size = body + len(username.encode()) + COMMAND_HEADROOM
    limit = message_limit()
    if size <= limit:
        return
    field = "model" if len(json.dumps(model, ensure_ascii=False)) * 2 >= size else "config"
    message = (
        f"the experiment's create command would be {human(size)}, over Kafka's "
        f"{human(limit)} message limit; make the {field} smaller"
    )
    if field == "model":
        message += f" (NNT_MAX_MODEL_BYTES is {human(settings.NNT_MAX_MODEL_BYTES, exact=True)})"
    raise TooLarge(f"{field}: {message}", {field: message})


def check_storage(user: Any, files: dict[str, Any]) -> None:
    """413 naming max_storage_bytes when the uploaded datasets would take the user past it,
    counted as the orchestrator counts (schemas/storage.py); call before any file is stored.

    A file the user's runs already hold adds nothing (the store keeps one copy): near the
    limit each upload is named by its content, as the store will name it, to tell.
    """
    from schemas import storage as accounting
    from web.accounts import quotas
    from web.simulations import storage

    uploaded = {field: upload for field, upload in files.items() if upload is not None}
    limit = quotas.effective(user).max_storage_bytes
    if limit is None or not uploaded:
        return
    held = storage.held(user)
    used = sum(held.values())
    if used + sum(upload.size for upload in uploaded.values()) <= limit:
        return
    sizes = {
        storage.path_of(upload.chunks(), storage.extension(upload.name or "", field)): upload.size
        for field, upload in uploaded.items()
    }
    new = sum(size for path, size in sizes.items() if path not in held)
    message = accounting.refusal(user.get_username(), used, new, limit)
    if message is not None:
        raise TooLarge(f"upload refused: {message}", {"__all__": message})


@cache
def upload_paths() -> frozenset[str]:
    """The two addresses that take a submission's files."""
    from django.urls import reverse

    return frozenset((reverse("api:create_experiment"), reverse("experiments:new")))


def body_cap(path: str) -> Limit:
    """Largest request body on this path: a submission's files plus its form fields there,
    the form fields alone everywhere else."""
    fields = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FRAMING_BYTES
    if path in upload_paths():
        total = settings.NNT_MAX_EXPERIMENT_UPLOAD_BYTES
        return Limit(total + fields, "NNT_MAX_EXPERIMENT_UPLOAD_BYTES")
    return Limit(fields, "DATA_UPLOAD_MAX_MEMORY_SIZE")


def body_refusal(path: str, length: int, at_least: bool = False) -> tuple[str, bytes]:
    """The 413 answer to a body of `length` bytes over the path's cap: (content type, body);
    JSON like every API error under /api/, plain text elsewhere."""
    cap = body_cap(path)
    size = f"at least {human(length)}" if at_least else human(length)
    message = f"the request body is {size}, over the {human(cap.bytes, exact=True)} "
    if cap.variable in FIXES:
        fields = human(cap.bytes - settings.NNT_MAX_EXPERIMENT_UPLOAD_BYTES, exact=True)
        message += (
            f"a submission may send ({cap.variable} plus {fields} of form fields); nothing of "
            f"it was stored; {FIXES[cap.variable]}"
        )
    else:
        message += "this address accepts; nothing of it was stored"
    if path.startswith("/api/"):
        body = json.dumps({"detail": message, "errors": {"__all__": message}}).encode()
        return "application/json", body
    return "text/plain; charset=utf-8", message.encode()


class RequestSizeLimit:
    """Middleware: 413 for a declared body over its path's cap, before Django parses it (the
    web server refuses it earlier still; this covers any other server)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse, or pass on."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > body_cap(request.path).bytes:
            content_type, body = body_refusal(request.path, length)
            return HttpResponse(body, status=413, content_type=content_type)
        return self.get_response(request)
