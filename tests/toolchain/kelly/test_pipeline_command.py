"""``kelly-tc pipeline``: the main job end to end in quick mode, and ``--audio`` on the shipped example
recording (MIDI that pretty_midi reads back with notes, JSON of every frame's outputs, fallbacks reported)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_modules

require_modules("torch")
pretty_midi = require_modules("pretty_midi")
require_modules("librosa")
from typer.testing import CliRunner  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from toolchain.cli import app  # noqa: E402
from toolchain.kelly.spec import MODEL_NAMES  # noqa: E402

EXAMPLE = REPO / "examples" / "example_chords.wav"


def invoke(*arguments):
    return CliRunner().invoke(app, [str(a) for a in arguments])


def test_shipped_example_is_a_small_mono_recording_of_its_score():
    import soundfile

    info = soundfile.info(str(EXAMPLE))
    seconds = info.frames / info.samplerate  # the recording's length, not a timing
    assert info.channels == 1 and info.samplerate == 22050 and 5 <= seconds <= 10
    assert EXAMPLE.stat().st_size < 500_000
    from examples.make_example import example_midi  # the shipped score is what the script writes

    shipped = pretty_midi.PrettyMIDI(str(EXAMPLE.with_suffix(".mid")))
    made = example_midi()
    assert [(n.pitch, round(n.start, 3)) for i in shipped.instruments for n in i.notes] == \
           [(n.pitch, round(n.start, 3)) for i in made.instruments for n in i.notes]


def test_audio_on_the_example_writes_midi_with_notes_and_per_frame_json(kelly_models, tmp_path):
    from toolchain.kelly.features import frame_features, load_audio

    result = invoke("pipeline", "--audio", EXAMPLE, "--models", kelly_models.directory, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "example_chords.mid"))
    assert [instrument.name for instrument in midi.instruments] == ["chords", "melody"]
    notes = [n for instrument in midi.instruments for n in instrument.notes]
    assert all(1 <= n.velocity <= 127 and n.end > n.start for n in notes)
    document = json.loads((tmp_path / "example_chords.outputs.json").read_text())
    frames = len(frame_features(load_audio(EXAMPLE)))
    assert document["frames"] == frames
    for name in MODEL_NAMES:
        assert np.asarray(document["outputs"][name]).shape[0] == frames
    from toolchain.kelly.decode import Event, chord_notes, melody_notes

    events = {key: [Event(**{**e, "pitches": tuple(e["pitches"])}) for e in document["decoded"][key]] for key in ("chords", "notes")}
    written = chord_notes(events["chords"]) + melody_notes(events["notes"])  # shared chord pitches held through
    assert sorted(n.pitch for n in notes) == sorted(note[0] for note in written)
    assert [m["source"] for m in document["models"]] == ["model"] * 5
    assert "example_chords.mid" in result.output and "training" not in result.output


def test_audio_with_a_missing_model_reports_the_fallback(kelly_models, tmp_path):
    models = kelly_models.copy_json(tmp_path / "models", [n for n in MODEL_NAMES if n != "HarmonyPredictor"])
    result = invoke("pipeline", "--audio", EXAMPLE, "--models", models, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "fallback HarmonyPredictor: I-IV-V-I in C major" in result.output
    document = json.loads((tmp_path / "out" / "example_chords.outputs.json").read_text())
    harmony = next(m for m in document["models"] if m["name"] == "HarmonyPredictor")
    assert harmony["source"] == "fallback" and "missing" in harmony["reason"]
    assert [c["label"] for c in document["decoded"]["chords"]][:4] == ["C", "F", "G", "C"]


def test_main_job_quick_run_end_to_end(tmp_path):
    """Train (1 epoch, synthetic data), export, validate, check and benchmark; then the models validate."""
    result = invoke("pipeline", "--quick", "--source", "synthetic", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = [r for r in summary["rows"] if r["variant"] == "float32"]  # compressed variants add their own rows
    assert [r["model"] for r in rows] == list(MODEL_NAMES) + ["pipeline (5 models)"]
    assert all(r["status"] == "ok" for r in rows)
    assert all(r["error_vs_torch"] <= 1e-5 and r["error_vs_onnx"] <= 1e-5 for r in rows)
    assert all(r["p50_us"] > 0 and r["p99_us"] >= r["p50_us"] and r["memory_bytes"] > 0 for r in rows)
    assert rows[-1]["parameters"] == sum(r["parameters"] for r in rows[:-1]) == 1_055_184
    assert all(r["cost_vs_float"] is None for r in rows)  # float32 is the reference: no cost
    compressed = [r for r in summary["rows"] if r["variant"] != "float32"]
    assert {r["variant"] for r in compressed} == {"int8", "pruned", "pruned+int8"}
    # each compressed file computes its own ONNX (conversion error) and reports, apart, what compression cost
    assert all(r["error_vs_onnx"] <= 1e-5 and r["cost_vs_float"] > r["error_vs_onnx"] for r in compressed)
    assert "cost vs float32" in result.output
    assert summary["training"]["models"]["HarmonyPredictor"]["sources"] == ["synthetic"]
    assert "pipeline (5 models)" in result.output and "wall time" in result.output
    assert invoke("validate", tmp_path / "models", "--check-specs").exit_code == 0


def test_models_without_audio_is_refused(tmp_path):
    result = invoke("pipeline", "--models", tmp_path)
    assert result.exit_code == 2 and "--models only applies with --audio" in result.output


def bad_recordings(tmp_path):
    """(name, path, what the one-line error says) of every recording --audio must refuse up front."""
    import soundfile

    unreadable = tmp_path / "bad.wav"
    unreadable.write_bytes(b"RIFF not really a wave file")
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(11025, np.float32), 22050)  # 0.5 s
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    return [("missing", tmp_path / "nowhere.wav", "nowhere.wav: no such audio file"),
            ("unreadable", unreadable, "bad.wav: unreadable audio"),
            ("short", short, "short.wav: too short: 0.500 s"),
            ("folder", folder, "folder.wav: not a regular file")]


def test_bad_recordings_are_refused_before_any_work_and_leave_nothing(tmp_path, monkeypatch):
    """No models and an empty --out: a good recording would train first; a bad one must stop before."""
    from toolchain.commands import pipeline as command

    monkeypatch.setattr(command, "_main_job", lambda *a, **k: pytest.fail("trained before checking the recording"))
    for name, path, message in bad_recordings(tmp_path):
        out = tmp_path / f"out-{name}"
        result = invoke("pipeline", "--audio", path, "--out", out)
        assert result.exit_code == 2, (name, result.output)
        assert message in result.output and "Traceback" not in result.output, name
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: "), name
        assert not out.exists(), name


def test_a_missing_models_folder_or_score_is_bad_input(tmp_path):
    result = invoke("pipeline", "--audio", EXAMPLE, "--models", tmp_path / "none", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "none: no such models folder" in result.output
    result = invoke("pipeline", "--audio", EXAMPLE, "--reference", tmp_path / "score.mid", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "score.mid: no such score" in result.output
    assert not (tmp_path / "out").exists()


def fake_main_job(kelly_models, calls):
    """Stands in for the main job: 'trains' by copying the exported test models into OUT/models."""
    from toolchain.kelly.main_job import JobReport, JobSettings

    def run(out, quick, source, dynamo, seed, console):
        calls.append(out)
        kelly_models.copy_json(out / "models")
        return JobReport(JobSettings(out))

    return run


def test_audio_reuses_the_models_of_a_previous_main_job(kelly_models, tmp_path, monkeypatch):
    from toolchain.commands import pipeline as command

    calls = []
    monkeypatch.setattr(command, "_main_job", fake_main_job(kelly_models, calls))
    first = invoke("pipeline", "--audio", EXAMPLE, "--out", tmp_path)
    assert first.exit_code == 0, first.output
    assert calls == [tmp_path] and "training them first with the main job" in first.output
    second = invoke("pipeline", "--audio", EXAMPLE, "--out", tmp_path)
    assert second.exit_code == 0, second.output
    assert calls == [tmp_path] and f"using the models of a previous main job in {tmp_path / 'models'}" in second.output


def test_models_made_for_other_features_are_not_reused(kelly_models, tmp_path):
    from toolchain.kelly.audio_job import models_missing

    models = kelly_models.copy_json(tmp_path / "models")
    assert models_missing(models) == []
    document = json.loads((models / "MelodyTransformer.json").read_text())
    del document["kelly_tc"]["features_version"]  # what a model of the log-mel-only wiring looks like
    (models / "MelodyTransformer.json").write_text(json.dumps(document))
    (models / "GroovePredictor.json").unlink()
    assert models_missing(models) == ["MelodyTransformer.json was made for features version 1, not 2",
                                      "GroovePredictor.json missing or unreadable"]


def test_reference_scores_the_written_midi_with_mir_eval(kelly_models, tmp_path):
    result = invoke("pipeline", "--audio", EXAMPLE, "--models", kelly_models.directory, "--out", tmp_path,
                    "--reference", EXAMPLE.with_suffix(".mid"))
    assert result.exit_code == 0, result.output
    assert "melody notes P" in result.output and "chord accuracy majmin" in result.output
