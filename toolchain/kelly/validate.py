"""``kelly-tc validate DIR [--check-specs]``: are the five Kelly model files in DIR fit to ship?

For each model ``NAME`` of the spec, ``DIR/NAME.json`` must:

1. load in the reference engine (strict RTNeural JSON, or kelly-tc's INT8 JSON);
2. reproduce the reference pair stored in it at export time (``"kelly_tc": {"reference": ...}``,
   see ``toolchain.cpp.reference_pair``): reset, one ``forward()`` per input row, every output within
   ``atol`` of the stored row -- what a C++ host's ``self_test()`` does on load;
3. keep a softmax output's logits where RTNeural's softmax is finite on the reference input: RTNeural
   computes ``exp(x) / sum(exp(x))`` without subtracting the maximum, so float32 overflows once
   ``sum(exp(x))`` passes FLT_MAX -- guaranteed impossible while the largest logit stays below
   ``ln(FLT_MAX) - ln(classes)`` (84.6 for HarmonyPredictor's 64 classes);
4. with ``check_specs``: match ``toolchain.kelly.spec`` -- the model named in its metadata, input and
   output sizes, the layer stack (kinds, sizes, activations) and the parameter count (the spec's exact
   count, which lies inside the spec's +-10% target).

Verdicts and exit codes (documented in docs/ARCHITECTURE.md): a file that is missing, unreadable,
not valid JSON, not a loadable model or with a malformed reference pair is a **broken file** (exit 2,
as any bad input); a file that loads but fails a check (spec, reference pair, logit range, or has no
reference pair) **failed** (exit 1). The worst verdict over the five files sets the exit code.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolchain.cpp.reference_pair import METADATA_KEY, reference_pair
from toolchain.errors import InputError, KellyError
from toolchain.kelly.spec import MODEL_NAMES, ModelSpec, get_spec
from toolchain.layers import Model


DEFAULT_ATOL = 1e-5
OK, FAILED, BROKEN = "ok", "failed", "broken file"
EXIT_CODES = {OK: 0, FAILED: 1, BROKEN: 2}
#: ln(FLT_MAX): exp() of a float32 above this is Inf.
FLOAT32_LOG_MAX = math.log(float(np.finfo(np.float32).max))


def softmax_logit_limit(classes: int) -> float:
    """Largest logit for which RTNeural's unshifted softmax over ``classes`` outputs cannot overflow."""
    return FLOAT32_LOG_MAX - math.log(classes)


@dataclass(frozen=True)
class Failure:
    """A failed check: ``check`` is one of :data:`CHECKS`, ``message`` says what is wrong."""

    check: str
    message: str


#: The checks a loaded file can fail.
SPEC, REFERENCE, NO_REFERENCE, SOFTMAX_RANGE = "spec", "reference", "no_reference", "softmax_range"
CHECKS = (SPEC, REFERENCE, NO_REFERENCE, SOFTMAX_RANGE)


@dataclass
class ModelValidation:
    """The verdict on one file, with the figures behind it."""

    name: str
    path: Path
    broken: list[str] = field(default_factory=list)  # reasons the file is unusable
    failures: list[Failure] = field(default_factory=list)  # checks it failed
    parameters: int | None = None
    reference_frames: int = 0
    reference_error: float | None = None  # max abs error on the stored pair
    max_logit: float | None = None  # largest pre-softmax value on the reference input (softmax models)
    engine: object = field(default=None, repr=False)  # the loaded engine (None for a broken file)

    @property
    def status(self) -> str:
        return BROKEN if self.broken else FAILED if self.failures else OK

    def line(self) -> str:
        """The one line that says what is wrong (empty when the file is fine)."""
        reasons = self.broken or [failure.message for failure in self.failures]
        return f"{self.path}: {'; '.join(reasons)}" if self.status != OK else ""

    def to_json(self) -> dict:
        return {"name": self.name, "path": str(self.path), "status": self.status, "broken": self.broken,
                "failures": [dataclasses.asdict(f) for f in self.failures], "parameters": self.parameters, "reference_frames": self.reference_frames,
                "reference_max_abs_error": self.reference_error, "max_logit": self.max_logit}


@dataclass
class ValidationReport:
    directory: Path
    check_specs: bool
    atol: float
    models: list[ModelValidation] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return max((EXIT_CODES[m.status] for m in self.models), default=0)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def lines(self) -> list[str]:
        """One line per broken or failed model."""
        return [m.line() for m in self.models if m.status != OK]

    def to_json(self) -> dict:
        return {"directory": str(self.directory), "check_specs": self.check_specs, "atol": self.atol,
                "exit_code": self.exit_code, "models": [m.to_json() for m in self.models]}


# ------------------------------------------------------------------------------------------ loading
def load_model_file(path: Path):
    """(float layer list, engine) of an RTNeural JSON or an INT8 JSON file; :class:`KellyError` if unusable."""
    from quant.int8_json import is_int8_json, read_int8_model
    from reference_engine.model import Engine
    from toolchain.graph_json import read_model

    if not path.is_file():
        raise KellyError("missing (export writes it: kelly-tc export)" if not path.exists() else "not a regular file", file=path)
    if is_int8_json(path):
        quantized = read_int8_model(path)
        return quantized.model, Engine(quantized, name=str(path))
    model = read_model(path)
    return model, Engine(model, name=str(path))


# ------------------------------------------------------------------------------------------- checks
def spec_mismatches(model: Model, spec: ModelSpec) -> list[str]:
    """What in ``model`` differs from ``spec`` (empty when it matches)."""
    problems = []
    metadata = model.metadata.get(METADATA_KEY)
    named = metadata.get("model") if isinstance(metadata, dict) else None
    if named is not None and named != spec.name:
        problems.append(f"the file holds {named}, not {spec.name}")
    if (model.input_size, model.output_size) != (spec.input_size, spec.output_size):
        problems.append(f"maps {model.input_size} -> {model.output_size}, the spec {spec.input_size} -> {spec.output_size}")
    stack = [(layer.kind, layer.out_size, getattr(layer, "activation", "")) for layer in model.layers]
    expected = [(layer.kind, layer.size, layer.activation) for layer in spec.layers]
    if stack != expected:
        found = " -> ".join(f"{kind}{size}{' ' + act if act else ''}" for kind, size, act in stack)
        problems.append(f"layers {found} differ from the spec's {spec.stack().split(' -> ', 1)[1]}")
    count, (low, high) = model.parameter_count(), spec.parameter_bounds()
    if count != spec.parameter_count() or not low <= count <= high:
        problems.append(f"{count:,} parameters, the spec {spec.parameter_count():,} (target {spec.parameter_target:,} +-10%)")
    return problems


def replay_reference(engine, inputs: np.ndarray) -> np.ndarray:
    """Reset, then one ``forward`` per row: the outputs a host's self-test compares."""
    engine.reset()
    outputs = np.stack([engine.forward(np.ascontiguousarray(frame)).copy() for frame in inputs])
    engine.reset()
    return outputs


def max_softmax_logit(model: Model, inputs: np.ndarray) -> float:
    """The largest value entering the final softmax over ``inputs`` (run from reset in the engine)."""
    from reference_engine.model import Engine

    last = model.layers[-1]
    # A standalone softmax layer is dropped; a dense layer's softmax is switched off.
    tail = [] if last.kind == "activation" else [dataclasses.replace(last, activation="")]
    logits_model = Model(model.input_size, model.layers[:-1] + tail)
    return float(np.max(replay_reference(Engine(logits_model), inputs)))


def check_softmax_range(result: ModelValidation, model: Model, inputs: np.ndarray) -> None:
    """Record the largest logit of a softmax output on ``inputs``; fail if RTNeural could overflow."""
    if getattr(model.layers[-1], "activation", "") != "softmax":
        return
    result.max_logit = max_softmax_logit(model, inputs)
    limit = softmax_logit_limit(model.output_size)
    if not result.max_logit < limit:
        result.failures.append(Failure(SOFTMAX_RANGE, f"softmax logits reach {result.max_logit:.4g} on the reference "
                                       f"input; RTNeural's softmax (no max subtraction) can overflow above {limit:.1f}"))


def check_reference(result: ModelValidation, engine, inputs: np.ndarray, expected: np.ndarray, atol: float) -> None:
    """Replay the stored pair; fail if any output is off by more than ``atol`` (or not finite)."""
    produced = replay_reference(engine, inputs)
    error = np.abs(produced.astype(np.float64) - expected.astype(np.float64))
    result.reference_error = float(error.max()) if np.all(np.isfinite(produced)) else math.inf
    if not result.reference_error <= atol:
        frame = int(np.flatnonzero(~(error.max(axis=1) <= atol))[0])  # "not <=": NaN counts as over
        result.failures.append(Failure(REFERENCE, f"reference pair not reproduced: max abs error "
                                       f"{result.reference_error:.3g} > atol {atol:g} (first at frame {frame} of {len(inputs)})"))


def validate_file(path: Path, name: str, check_specs: bool, atol: float = DEFAULT_ATOL) -> ModelValidation:
    """The verdict on one model file (never raises for a bad file: the verdict says why)."""
    result = ModelValidation(name, path)
    try:
        model, engine = load_model_file(path)
        pair = reference_pair(model)
    except KellyError as error:
        result.broken.append(error.line().removeprefix(f"{path}: "))
        return result
    result.parameters, result.engine = model.parameter_count(), engine
    if check_specs:
        result.failures += [Failure(SPEC, problem) for problem in spec_mismatches(model, get_spec(name))]
    if pair is None:
        result.failures.append(Failure(NO_REFERENCE, f"no reference pair ('{METADATA_KEY}': {{'reference': ...}}; "
                                                     "kelly-tc export writes one)"))
        return result
    result.reference_frames = len(pair[0])
    check_softmax_range(result, model, pair[0])
    check_reference(result, engine, *pair, atol)
    return result


def validate_directory(directory: str | Path, check_specs: bool = False, atol: float = DEFAULT_ATOL,
                       names: list[str] | None = None) -> ValidationReport:
    """Validate ``directory/NAME.json`` for every Kelly model (or ``names``); see the module docstring."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("no such folder (the -o of kelly-tc export)", file=directory)
    report = ValidationReport(directory, check_specs, atol)
    for name in names or MODEL_NAMES:
        report.models.append(validate_file(directory / f"{name}.json", name, check_specs, atol))
    return report
