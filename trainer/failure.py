"""One readable line for a failed run: what went wrong and where, dug out of Keras and TF errors.

A TensorFlow error's text is a graph traceback of a thousand characters or more; a person
needs the sentence inside it, the layer, loss or metric it names, and the fix. `summarise`
returns that line and the full text, which the trainer publishes as the `failed` status's
`message` and `detail`.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import keras

from trainer.errors import TrainerError

LINE_CAP = 200  # characters of the one-line message
DETAIL_CAP = 20_000  # characters of the full text; its head and its tail are kept
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Where TensorFlow names the failing op: "Detected at node X", "[[{{node X}}]]", "'{{node X}} = ..."
NODE = re.compile(r"Detected at node '?([\w./-]+)|\{\{node ([\w./-]+)\}\}")
NODE_INPUTS = re.compile(r"\}\} = \w+\[[^\]]*\]\(([^)]*)\)")
OP_NOISE = re.compile(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$|\s*\[\[\{\{node .*$")
KERAS_CALL = re.compile(r"Exception encountered when calling (?:layer ['\"]([^'\"]+)['\"])?")
SHAPE = r"(\[[^\]]*\]|\([^)]*\))"
LOSS_HINT = "check the label shape against the model's output"
METRIC_HINT = "check that the metric fits the labels (class indices or one value per output)"


@dataclass(frozen=True)
class Culprit:
    """The layer, loss or metric an error happened in."""

    kind: str  # "layer", "loss" or "metric"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}" if self.name else f"in the {self.kind}"


@dataclass(frozen=True)
class Rule:
    """A known error text: how to say it in one sentence, and the fix."""

    pattern: re.Pattern[str]
    say: str  # str.format template over the match's groups
    fix: str


RULES = (
    Rule(
        re.compile(
            r"OOM when allocating tensor with shape\s*\[([^\]]*)\] and type (\w+) on \S*device:(\w+:\d+)"
        ),
        "out of memory allocating a {1} tensor of shape [{0}] on {2}",
        "lower batch_size or make the model smaller",
    ),
    Rule(
        re.compile(
            r"Received a label value of (-?\d+) which is outside the valid range of \[(-?\d+), (\d+)\)"
        ),
        "label {0} is outside the valid range [{1}, {2})",
        "labels must be class indices below the last layer's units",
    ),
    Rule(
        re.compile(r"indices\[[\d,]*\] = (-?\d+) is not in \[(-?\d+), (\d+)\)"),
        "input value {0} is not a valid index in [{1}, {2})",
        "raise the layer's input_dim (vocabulary size) or fix the data",
    ),
    Rule(
        re.compile(r"(?:\}\}\s*)?([^\n{}:]+?)\s*:\s*Tensor had (NaN|Inf) values"),
        "{1} values in {0}",
        "lower the learning rate or scale the inputs",
    ),
    Rule(
        re.compile(
            r"Input (\d+)(?: with name '[^']*')? of layer '[^']+' is incompatible with the layer: ([^\n]+)"
        ),
        "input {0} is incompatible: {1}",
        "check the data's shape against the model's Input",
    ),
)
SHAPE_RULES = (
    re.compile(
        rf"Dimensions must be equal, but are \d+ and \d+ for .*? with input shapes: {SHAPE}, {SHAPE}"
    ),
    re.compile(rf"Incompatible shapes: {SHAPE} vs\. {SHAPE}"),
)


def summarise(exc: BaseException, where: str = "", layers: Sequence[str] = ()) -> tuple[str, str]:
    """(one line of at most LINE_CAP characters, the full error text) of a failure.

    `where` says when it happened ("epoch 3", "test evaluation"); `layers` are the model's
    layer names, to name the layer behind a TensorFlow op. Our own errors are field-named
    already: their first line is the message.
    """
    return one_line(exc, where, layers), full_text(exc)


def one_line(exc: BaseException, where: str = "", layers: Sequence[str] = ()) -> str:
    """What went wrong and where, in one line."""
    text = ANSI.sub("", str(exc))
    if isinstance(exc, TrainerError):
        return _cap(first_line(text))
    text = _inner(text)
    culprit = _from_frames(exc) or _from_node(text, layers) or _from_text(text)
    sentence, fix = _sentence(exc, text, culprit, layers)
    prefix = ", ".join(str(p) for p in (where, culprit) if p)
    return _compose(prefix, sentence, fix)


def full_text(exc: BaseException) -> str:
    """The traceback with every chained cause, its middle cut past DETAIL_CAP characters."""
    text = ANSI.sub("", "".join(traceback.format_exception(exc))).rstrip()
    if len(text) <= DETAIL_CAP:
        return text
    head, tail = DETAIL_CAP // 5, DETAIL_CAP - DETAIL_CAP // 5
    cut = len(text) - head - tail
    return f"{text[:head]}\n… {cut} characters cut …\n{text[-tail:]}"


def first_line(text: str) -> str:
    """The first non-empty line of a text, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _inner(text: str) -> str:
    """Keras's "Exception encountered when calling X" wrapper: the message it wraps."""
    if not KERAS_CALL.search(text):
        return text
    body = text.split("\n\n", 1)[1] if "\n\n" in text else text
    return re.split(r"(?i)(?:call )?arguments received by", body, maxsplit=1)[0].strip() or text


def _from_frames(exc: BaseException) -> Culprit | None:
    """The innermost layer, loss or metric on the traceback's frames (seen only when Keras's
    traceback filtering is off: the trainer turns it off)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        obj = tb.tb_frame.f_locals.get("self")
        if isinstance(obj, keras.metrics.Metric):
            found = Culprit("metric", obj.name)
        elif isinstance(obj, keras.losses.Loss):
            found = Culprit("loss", obj.name)
        elif isinstance(obj, keras.layers.Layer) and not isinstance(obj, keras.Model):
            found = Culprit("layer", obj.name)
        tb = tb.tb_next
    return found


def _from_node(text: str, layers: Sequence[str]) -> Culprit | None:
    """The layer, loss or metric of the TensorFlow op an error names."""
    match = NODE.search(text)
    if not match:
        return None
    parts = (match.group(1) or match.group(2)).split("/")
    if parts[0].startswith(("compile_loss", "compile_metrics")) and len(parts) > 2:
        return Culprit("loss" if parts[0].startswith("compile_loss") else "metric", parts[1])
    name = _layer_of(parts, layers)
    return Culprit("layer", name) if name else None


def _layer_of(parts: Sequence[str], layers: Sequence[str]) -> str | None:
    """The layer behind an op path like `functional_1/tokens_1/GatherV2` (Keras adds `_1`)."""
    scopes = parts[1:-1]
    if layers:
        for scope in scopes:
            for name in (scope, re.sub(r"_\d+$", "", scope)):
                if name in layers:
                    return name
        return None
    return re.sub(r"_\d+$", "", scopes[0]) if scopes else None


def _from_text(text: str) -> Culprit | None:
    match = re.search(r"of layer '([^']+)'", text) or KERAS_CALL.search(text)
    return Culprit("layer", match.group(1)) if match and match.group(1) else None


def _sentence(
    exc: BaseException, text: str, culprit: Culprit | None, layers: Sequence[str]
) -> tuple[str, str]:
    """The error in one sentence, and its fix ("" when there is no general one)."""
    for rule in RULES:
        match = rule.pattern.search(text)
        if match:
            return rule.say.format(*match.groups()), rule.fix
    for pattern in SHAPE_RULES:
        match = pattern.search(text)
        if match:
            return _shapes(text, match.groups(), layers), _shape_fix(culprit)
    line = _meaningful_line(text)
    if type(exc) is not ValueError and not type(exc).__module__.startswith("tensorflow"):
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line, METRIC_HINT if culprit and culprit.kind == "metric" else ""


def _shapes(text: str, shapes: Sequence[str], layers: Sequence[str]) -> str:
    """The clash, naming its operands where the op does: `incompatible shapes: labels [32,3]
    vs layer 'dense_2' output [32,10]`."""
    inputs = NODE_INPUTS.search(text)
    names = [_operand(s, layers) for s in inputs.group(1).split(", ")] if inputs else []
    if len(names) == 2 and all(names):
        return f"incompatible shapes: {names[0]} {shapes[0]} vs {names[1]} {shapes[1]}"
    return f"incompatible shapes {shapes[0]} vs {shapes[1]}"


def _operand(op: str, layers: Sequence[str]) -> str:
    if re.fullmatch(r"data_\d+|y_true|target\w*", op):
        return "labels"
    name = _layer_of(op.split("/"), layers) if "/" in op else None
    return f"layer {name!r} output" if name else ""


def _shape_fix(culprit: Culprit | None) -> str:
    if culprit and culprit.kind == "metric":
        return METRIC_HINT
    if culprit and culprit.kind == "layer":
        return "check the shapes flowing into this layer"
    return LOSS_HINT


def _meaningful_line(text: str) -> str:
    """A TF graph error's own sentence sits after its op traceback, before `[[{{node ...}}]]`."""
    lines = [line.strip() for line in text.splitlines()]
    if text.startswith("Graph execution error"):
        ends = [i for i, line in enumerate(lines) if line.startswith("[[")]
        body = lines[: ends[0]] if ends else lines
        lines = [line for line in body if line and not line.startswith("File ")][-1:]
    line = next((ln for ln in lines if ln), "")
    return OP_NOISE.sub("", line).strip()


def _compose(prefix: str, sentence: str, fix: str) -> str:
    """`prefix: sentence — fix`, the sentence shortened so that the whole fits LINE_CAP."""
    head = f"{prefix}: " if prefix else ""
    tail = f" — {fix}" if fix else ""
    room = max(LINE_CAP - len(head) - len(tail), 40)
    sentence = " ".join(sentence.split())
    if len(sentence) > room:
        sentence = sentence[: room - 1].rstrip() + "…"
    return _cap(f"{head}{sentence}{tail}")


def _cap(line: str) -> str:
    return line if len(line) <= LINE_CAP else line[: LINE_CAP - 1].rstrip() + "…"
