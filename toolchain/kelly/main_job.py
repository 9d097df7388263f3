"""``kelly-tc pipeline``: the embedded default, end to end -- train, export, validate, check, benchmark.

Layout of ``out`` (default ``kelly-out``)::

    training/        kelly-tc train's output (checkpoints, histories, training_summary.json)
    models/          NAME.onnx, NAME.json (with the reference pair); models.export_report.json beside it
    .kelly-cache/    the rendered corpus pieces (reused by the next run)
    summary.json     every figure of the summary table, with the settings and the machine

The summary is a list of :class:`SummaryRow`, one per (variant, model) plus one per variant for the
five models run as the pipeline. The float32 models are variant ``"float32"``; another variant (INT8,
pruned) adds its rows with :func:`variant_rows` from its own folder of model files.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toolchain import atomic
from toolchain.kelly.config import TrainConfig
from toolchain.kelly.progress import Reporter
from toolchain.kelly.spec import FEATURE_SIZE, MODEL_NAMES

#: Training settings of the two modes: a brief but real run, and a smoke test (tests, CI).
TRAINING_PRESETS = {
    "default": {"epochs": 10, "corpus_pieces": 24, "max_sequences": 1024, "synthetic_sequences": 320},
    "quick": {"epochs": 1, "corpus_pieces": 3, "max_sequences": 64, "synthetic_sequences": 48},
}
BENCH_FRAMES = {"default": 3000, "quick": 200}
BENCH_WARMUP = 200
PIPELINE_ROW = "pipeline (5 models)"


@dataclass
class JobSettings:
    out: Path = Path("kelly-out")
    quick: bool = False
    source: str = "auto"  # the training source policy (toolchain.kelly.config.SOURCES)
    dynamo: bool = False
    seed: int = 0

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "default"

    def train_config(self) -> TrainConfig:
        return TrainConfig(source=self.source, output=str(self.out / "training"), cache_dir=str(self.out / ".kelly-cache"),
                           seed=self.seed, **TRAINING_PRESETS[self.mode]).validate()


@dataclass
class SummaryRow:
    """One line of the summary. Errors are max abs errors; latency per frame, one call per frame."""

    variant: str
    model: str
    parameters: int
    json_bytes: int
    error_vs_torch: float | None
    error_vs_onnx: float | None
    status: str  # validate's verdict: ok / failed / broken file
    p50_us: float | None
    p99_us: float | None
    memory_bytes: int | None  # the engine's resident weights + op table + state + scratch
    val_ratio: float | None = None  # training: validation loss / predict-the-mean baseline
    #: A compressed variant's accuracy cost: max abs error of its output against the float32 model's (onnxruntime).
    #: Kept apart from the conversion errors above, which say whether the file computes ITS model (a pass/fail).
    cost_vs_float: float | None = None


@dataclass
class JobReport:
    settings: JobSettings
    rows: list[SummaryRow] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage
    problems: list[str] = field(default_factory=list)  # failed checks, one line each
    training: dict = field(default_factory=dict)
    #: the music the trained models make on the validation pieces (toolchain.kelly.music_eval; mir_eval)
    music: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # findings that are not failures (INT8 slower than float, ...)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        from reference_engine.benchmark import machine

        settings = {**asdict(self.settings), "out": str(self.settings.out)}
        return {"settings": settings, "passed": self.passed, "problems": self.problems, "stages_seconds": self.stages,
                "notes": self.notes, "rows": [asdict(row) for row in self.rows], "training": self.training,
                "music": self.music, "machine": machine()}


# ------------------------------------------------------------------------------------------- bench
def bench_models(directory: Path, frames: int, seed: int = 0, reporter: Reporter | None = None):
    """Per-model latency/memory (``reference_engine.benchmark``) and the processor's per-frame latency.

    Returns ({name: Measurement}, pipeline latency statistics in seconds or None)."""
    from reference_engine.benchmark import latency_statistics, load_for_bench, measure, time_frames
    from reference_engine.pipeline import MultiModelProcessor

    reporter = reporter or Reporter()
    present = [name for name in MODEL_NAMES if (directory / f"{name}.json").is_file()]
    loaded = [load_for_bench(directory / f"{name}.json", name) for name in present]
    reporter.stage("benchmark: timing each model, then the pipeline", frames * (len(loaded) + 2))
    measured, _ = measure(loaded, frames, BENCH_WARMUP, seed, on_progress=reporter.advance) if loaded else ([], None)
    processor = MultiModelProcessor(directory)
    features = np.random.default_rng(seed).uniform(-1.5, 1.5, (frames + BENCH_WARMUP, FEATURE_SIZE)).astype(np.float32)
    process = processor.process_frame
    time_frames(lambda t: process(features[t]), BENCH_WARMUP)
    processor.reset()
    samples = time_frames(lambda t: process(features[BENCH_WARMUP + t]), frames, reporter.advance)
    return {m.name: m for m in measured}, latency_statistics(samples)


def variant_rows(variant: str, directory: Path, measurements: dict, pipeline_latency: dict | None,
                 validation=None, errors: dict | None = None, ratios: dict | None = None,
                 costs: dict | None = None) -> list[SummaryRow]:
    """The summary rows of one variant's model folder: one per model, then the pipeline row.

    ``errors``: {name: (error vs PyTorch, error vs onnxruntime)}; ``ratios``: {name: val/baseline};
    ``costs``: {name: max abs vs the float32 model} for a compressed variant."""
    errors, ratios, costs = errors or {}, ratios or {}, costs or {}
    status = {m.name: m.status for m in validation.models} if validation else {}
    rows = []
    for name in MODEL_NAMES:
        path = directory / f"{name}.json"
        measurement = measurements.get(name)
        torch_error, onnx_error = errors.get(name, (None, None))
        rows.append(SummaryRow(variant, name, measurement.details["parameters"] if measurement else 0,
                               path.stat().st_size if path.is_file() else 0, torch_error, onnx_error,
                               status.get(name, "-"), _us(measurement, "p50"), _us(measurement, "p99"),
                               measurement.memory["total_bytes"] if measurement else None, ratios.get(name),
                               costs.get(name)))
    known = [row for row in rows if row.parameters]
    worst = (lambda values: max(values) if values and None not in values else None)
    rows.append(SummaryRow(variant, PIPELINE_ROW, sum(r.parameters for r in known), sum(r.json_bytes for r in known),
                           worst([r.error_vs_torch for r in rows]), worst([r.error_vs_onnx for r in rows]),
                           "ok" if all(r.status == "ok" for r in rows) else "failed",
                           pipeline_latency["p50"] * 1e6 if pipeline_latency else None,
                           pipeline_latency["p99"] * 1e6 if pipeline_latency else None,
                           sum(r.memory_bytes or 0 for r in known) if known else None,
                           cost_vs_float=worst([r.cost_vs_float for r in rows]) if costs else None))
    return rows


def _us(measurement, statistic: str) -> float | None:
    return measurement.latency[statistic] * 1e6 if measurement else None


# ------------------------------------------------------------------------------------------- job
def run_main_job(settings: JobSettings, reporter: Reporter | None = None) -> JobReport:
    """Train briefly, export, convert, validate, check and benchmark the five models; write summary.json."""
    from toolchain.kelly.export import export_models
    from toolchain.kelly.training import train_models
    from toolchain.kelly.validate import validate_directory

    reporter = reporter or Reporter()
    report = JobReport(settings)
    models_dir = settings.out / "models"
    started = time.perf_counter()
    trained = train_models(settings.train_config(), reporter)
    report.training = trained.to_dict()
    report.stages["train"] = _lap(started)

    started = time.perf_counter()
    from toolchain.kelly.export import load_checkpoints

    reporter.stage("export: ONNX -> RTNeural JSON, checked against PyTorch and onnxruntime", len(MODEL_NAMES))
    trained_models = load_checkpoints(trained.output)
    exported = export_models(trained_models, models_dir, settings.dynamo, seed=settings.seed,
                             on_model=lambda name: reporter.advance(1, f"export: {name}"))
    report.problems += exported.failures()
    report.stages["export + check"] = _lap(started)

    started = time.perf_counter()  # issue 14: what the models play on pieces they never saw
    unseen = trained.validation_pieces.get("MelodyTransformer", [])
    if unseen:
        from toolchain.kelly.music_eval import evaluate_pieces

        reporter.stage(f"music: the five models on {len(unseen)} unseen pieces (mir_eval)", None)
        report.music = {"pieces": [piece.name for piece in unseen], **evaluate_pieces(trained_models, unseen)}
    report.stages["music"] = _lap(started)

    started = time.perf_counter()
    validation = validate_directory(models_dir, check_specs=True)
    report.problems += validation.lines()
    report.stages["validate"] = _lap(started)

    started = time.perf_counter()
    measurements, pipeline_latency = bench_models(models_dir, BENCH_FRAMES[settings.mode], settings.seed, reporter)
    report.stages["benchmark"] = _lap(started)

    errors = {m.name: (m.torch_error, m.onnx_error) for m in exported.models}
    ratios = {name: result.ratio for name, result in trained.results.items()}
    report.rows = variant_rows("float32", models_dir, measurements, pipeline_latency, validation, errors, ratios)

    started = time.perf_counter()  # issue 6: the same five models as INT8, 50% pruned, and both (quant/variants.py)
    from quant.variants import write_variants

    reporter.stage("compress: INT8, 50% structured pruning, both; convert and check", 3 * len(MODEL_NAMES))
    from quant.calibration import model_inputs
    from toolchain.kelly.datasets import validation_samples

    def samples_for(name, model):  # --auto judges each INT8 form on the model's own validation input
        return validation_samples(name, model_inputs(model)[0].name, settings.train_config())

    for variant in write_variants(models_dir, settings.out, MODEL_NAMES, samples_for=samples_for,
                                  on_model=lambda label: reporter.advance(1, f"compress: {label}")):
        checked = validate_directory(variant.directory)  # each file against its own ONNX's reference output
        report.problems += variant.problems + checked.lines()
        measured, latency = bench_models(variant.directory, BENCH_FRAMES[settings.mode], settings.seed, reporter)
        report.rows += variant_rows(variant.name, variant.directory, measured, latency, checked, variant.errors,
                                    costs=variant.costs)
        report.notes += variant.notes
        if variant.name.endswith("int8"):
            report.notes += int8_latency_notes(variant.name, measured, measurements)
    report.stages["int8 + prune"] = _lap(started)
    atomic.write_json(settings.out / "summary.json", _finite(report.to_json()))
    return report


def int8_latency_notes(variant: str, int8: dict, float32: dict) -> list[str]:
    """Per model, the INT8 engine's weight bytes against the float engine's; and one line per model whose INT8
    engine is slower than its float engine (p50 per frame, the same benchmark): the INT8 kernels widen each int8
    weight to float32, which pays only when the weights stream from memory."""
    notes = []
    for name, measured in int8.items():
        base = float32.get(name)
        if base is None:
            continue
        int8_bytes, float_bytes = measured.memory["weight_bytes"], base.memory["weight_bytes"]
        notes.append(f"{variant} {name}: engine weights {int8_bytes:,} bytes vs float {float_bytes:,} "
                     f"({int8_bytes / float_bytes:.4f}x)")
        ratio = measured.latency["p50"] / base.latency["p50"]
        if ratio > 1.0:
            notes.append(f"{variant} {name}: INT8 p50 {measured.latency['p50'] * 1e6:.2f} us vs float "
                         f"{base.latency['p50'] * 1e6:.2f} us ({ratio:.2f}x): the INT8 kernels are slower on this model "
                         "(its float weights fit in cache) -- ship float unless memory is the constraint")
    return notes


def _lap(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _finite(value):
    """``value`` with NaN/Inf floats as None (strict JSON)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
