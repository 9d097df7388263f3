"""``kelly-tc pipeline [--audio FILE.wav] [--out DIR] [--quick]``: the Kelly models end to end.

Without ``--audio``: train briefly (music21 corpus, synthetic without it), export, convert, validate,
check and benchmark the five models; print the summary and the music the models make on unseen pieces.
With ``--audio``: check the recording first (nothing is done or written for a bad one), then use the
models of ``--models DIR``, or those a previous main job left in ``OUT/models`` -- training them (the main
job, announced) only when there are none -- and stream the recording through the five-model pipeline
into MIDI + JSON. ``--reference SCORE.mid`` then scores the MIDI against the score (mir_eval).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.cli import command, status
from toolchain.errors import CheckFailed, InputError, UnsupportedError


@command
def pipeline(
    audio: Optional[Path] = typer.Option(None, "--audio", help="A recording (wav, flac, mp3...) to turn into MIDI with the five models."),
    out: Path = typer.Option(Path("kelly-out"), "--out", "-o", help="Output folder (training/, models/, summary.json, the MIDI and JSON)."),
    quick: bool = typer.Option(False, "--quick", help="A smoke run: 1 epoch on a few pieces, short benchmark."),
    models: Optional[Path] = typer.Option(None, "--models", help="Use these exported models (NAME.json) instead of training; only with --audio."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="With --audio: a score (MIDI with 'melody' and 'chords' instruments) to compare the written MIDI with (mir_eval)."),
    source: str = typer.Option("auto", "--source", help="Training data: auto (corpus, synthetic without music21), corpus or synthetic."),
    dynamo: bool = typer.Option(False, "--dynamo/--no-dynamo", help="Export with torch's dynamo exporter."),
    seed: int = typer.Option(0, "--seed", help="Seed of training, export checks and benchmark input."),
) -> None:
    """Train, export, validate, check and benchmark the five Kelly models; with --audio, also turn a recording into MIDI."""
    console = Console(width=max(Console().width, 160), soft_wrap=True)
    if models is not None and audio is None:
        raise UnsupportedError("--models only applies with --audio (without it the pipeline trains its own models)",
                               where="--models")
    from toolchain import atomic, options

    options.seed(seed)
    atomic.check_folder(out, what="--out")  # before training: a file in the way or a read-only folder
    if reference is not None and audio is None:
        raise UnsupportedError("--reference only applies with --audio", where="--reference")
    recording = None
    if audio is not None:  # check the inputs before any work: a bad recording costs seconds and writes nothing
        from toolchain.kelly.audio_job import read_recording

        recording = read_recording(audio)
        if reference is not None and not reference.is_file():
            raise InputError("no such score (MIDI) file", file=reference)
        if models is not None and not models.is_dir():
            raise InputError("no such models folder (the models/ of a main job, or kelly-tc export's -o)", file=models)
    report = None
    if models is None:
        models = out / "models"
        missing = _models_missing(models) if audio is not None else ["no --audio"]
        if audio is not None and not missing:
            console.print(f"using the models of a previous main job in {models} (delete them, or run kelly-tc pipeline, to retrain)")
        else:
            if audio is not None:
                console.print(f"no usable trained models in {models} ({'; '.join(missing[:2])}): "
                              "training them first with the main job")
            report = _main_job(out, quick, source, dynamo, seed, console)
    if audio is not None:
        from toolchain.kelly.audio_job import process_audio

        with status(Console(stderr=True), f"streaming {audio} through the five models"):
            result = process_audio(audio, models, out, recording)
        render_audio(result, console)
        if reference is not None:
            from toolchain.kelly.scoring import compare_midi

            render_scores(compare_midi(reference, result.midi_path), console)
    if report is not None and not report.passed:
        raise CheckFailed("; ".join(report.problems))


def _models_missing(directory: Path) -> list[str]:
    from toolchain.kelly.audio_job import models_missing

    return models_missing(directory)


def render_scores(scores: dict, console: Console) -> None:
    """The written MIDI against the score: melody notes (mir_eval, 50 ms onsets) and chord accuracy."""
    melody, chords = scores["melody"], scores["chords"]
    console.print(f"vs {scores['reference']}: melody notes P {melody['precision']:.3f} R {melody['recall']:.3f} "
                  f"F1 {melody['f1']:.3f} (onsets within 50 ms; with offsets F1 {melody['f1_with_offsets']:.3f}), "
                  f"{melody['estimated_notes']} notes for {melody['reference_notes']}; chord accuracy majmin "
                  f"{chords['majmin']:.3f}, sevenths {chords['sevenths']:.3f}, root {chords['root']:.3f} (mir_eval)")


def _main_job(out: Path, quick: bool, source: str, dynamo: bool, seed: int, console: Console):
    try:
        from toolchain.kelly.main_job import JobSettings, run_main_job
    except ImportError as error:
        raise UnsupportedError(f"the pipeline trains with PyTorch ({error.name} is missing): pip install torch==2.13.0") from None
    from toolchain.kelly.progress import progress_reporter

    started = time.perf_counter()
    with progress_reporter() as reporter:
        report = run_main_job(JobSettings(out, quick, source, dynamo, seed), reporter)
    console.print(render_summary(report.rows, f"Kelly models ({'quick' if quick else 'default'} run, {out})"))
    if report.music:
        console.print(render_music(report.music))
    stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in report.stages.items())
    console.print(f"wall time {time.perf_counter() - started:.1f} s ({stages}); summary: {out / 'summary.json'}")
    console.print("errors: max abs, engine (one frame per call) vs PyTorch and vs onnxruntime; latency: per frame, one "
                  "call per frame (pipeline: MultiModelProcessor.process_frame); memory: the engines' weights + op table + state + "
                  "scratch; val/base: validation loss / predict-the-mean baseline; valid: the file loads, matches the spec "
                  "and computes its own ONNX model; cost vs float32: the accuracy a compressed variant (int8, pruned = 50% "
                  "structured, pruned+int8) gives up, as the max abs distance of its outputs from the float32 model's (outputs of sigmoid/softmax "
                  "models lie in [0, 1], of tanh models in [-1, 1]); JSON bytes of the INT8 variants: the INT8 JSON")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    return report


def _number(value, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def _cost(cost: float | None) -> str:
    """A compressed variant's accuracy cost, worded as a cost: "-" for the float32 rows (nothing lost)."""
    if cost is None:
        return "-"
    colour = "green" if cost <= 1e-3 else "yellow" if cost <= 5e-2 else "red"
    return f"[{colour}]{cost:.2g}[/]"


def render_summary(rows, title: str) -> Table:
    """One row per (variant, model): a compressed variant's rows sit under the float32 ones."""
    from reference_engine.budget import format_size

    table = Table(title=title)
    for column in ("variant", "model", "params", "JSON bytes", "vs PyTorch", "vs onnxruntime", "valid",
                   "cost vs float32", "p50 us", "p99 us", "memory", "val/base"):
        table.add_column(column, justify="left" if column in ("variant", "model", "valid") else "right")
    for row in rows:
        valid = f"[green]{row.status}[/]" if row.status == "ok" else f"[red]{row.status}[/]"
        table.add_row(row.variant, row.model, f"{row.parameters:,}", f"{row.json_bytes:,}",
                      _number(row.error_vs_torch, ".1e"), _number(row.error_vs_onnx, ".1e"), valid, _cost(row.cost_vs_float),
                      _number(row.p50_us, ".1f"), _number(row.p99_us, ".1f"),
                      "-" if row.memory_bytes is None else format_size(row.memory_bytes), _number(row.val_ratio, ".3f"))
    return table


def render_music(music: dict) -> Table:
    """The music the models make on the unseen (validation) pieces, scored with mir_eval."""
    melody, chords = music["melody"], music["chords"]
    table = Table(title=f"Music on {len(music['pieces'])} unseen pieces ({music['seconds']:.0f} s), mir_eval")
    for column in ("melody pitch acc (sounding frames)", "melody overall acc", "note P", "note R", "note F1",
                   "note F1 w/ offsets", "chords majmin", "chords sevenths"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{value:.3f}" for value in (melody["raw_pitch_accuracy"], melody["overall_accuracy"],
                                                 melody["precision"], melody["recall"], melody["f1"],
                                                 melody["f1_with_offsets"], chords["majmin"], chords["sevenths"])))
    return table


def render_audio(result, console: Console) -> None:
    decoded = result.decoded
    console.print(f"{result.audio_path}: {result.audio_seconds:.2f} s, {result.frames} frames streamed in "
                  f"{result.processing_seconds * 1e3:.0f} ms ({result.processing_seconds / result.frames * 1e6:.0f} us/frame)")
    for model in result.models:
        if model["source"] == "fallback":
            console.print(f"[yellow]fallback[/] {model['name']}: {model['fallback']} ({model['reason']})")
    chords = " ".join(f"{e.label}@{e.start:.2f}s" for e in decoded.chords) or "none"
    console.print(f"tempo {decoded.tempo:.0f} bpm; chords: {chords}")
    console.print(f"melody: {len(decoded.notes)} notes" + (": " + " ".join(e.label for e in decoded.notes[:24]) if decoded.notes else ""))
    console.print(f"wrote {result.midi_path} and {result.json_path}")
