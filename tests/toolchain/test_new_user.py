"""What a new user meets first (issue 13): usage errors as one line, progress that reads well in a log
file, an honest per-frame time from ``run``, messages that say what to do, and a clean install."""
from __future__ import annotations

import io
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from reference_engine import synthetic
from tests.conftest import REPO
from toolchain.cli import app
from toolchain.rtneural_json import write_model


def invoke(*arguments):
    return CliRunner().invoke(app, [str(a) for a in arguments])


@pytest.fixture
def model_json(tmp_path):
    rng = np.random.default_rng(41)
    path = tmp_path / "m.json"
    write_model(synthetic.model(3, [synthetic.dense(rng, 3, 5, "relu"), synthetic.lstm(rng, 5, 7)]), path)
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (25, 3)).astype(np.float32))
    return path


# ------------------------------------------------------------------------------------------ usage errors
@pytest.mark.parametrize("arguments,reason", [
    (["convert", "--no-such-option", "m.onnx"], "kelly-tc convert: No such option: --no-such-option"),
    (["convert"], "kelly-tc convert: Missing argument"),
    (["check", "--frames", "many", "a.onnx", "b.json"], "kelly-tc check: Invalid value for '--frames'"),
    (["no-such-command"], "kelly-tc: No such command 'no-such-command'"),
], ids=["unknown-option", "missing-argument", "bad-number", "unknown-command"])
def test_a_usage_error_is_one_line_with_exit_2(arguments, reason):
    result = invoke(*arguments)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"error: {reason}")
    assert result.stderr.rstrip().endswith("--help)") and "╭" not in result.stderr and result.stdout == ""


def test_the_installed_script_prints_the_same_one_line():
    script = "import sys; from toolchain.cli import main; sys.argv = ['kelly-tc', 'bench', '--budget']; main()"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: kelly-tc: Option '--budget' requires an argument\n"  # click gives no context here


def test_help_still_prints_and_exits_0():
    result = invoke("convert", "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout and "--int8" in result.stdout


# -------------------------------------------------------------------------------------------- progress
def test_off_a_terminal_progress_is_plain_lines_that_appear_as_work_goes():
    from rich.console import Console

    from toolchain.kelly.progress import LineReporter, progress_reporter

    stream = io.StringIO()
    reporter = progress_reporter(Console(file=stream, force_terminal=False))
    assert isinstance(reporter, LineReporter)
    with reporter:
        reporter.stage("EmotionRecognizer: training", 8)
        reporter.advance(2)
        written = stream.getvalue()  # already there, before the stage ends (what `> log` shows mid-run)
        reporter.advance(0, "EmotionRecognizer: epoch 1 val 0.5")
        reporter.advance(3)
        reporter.finish("EmotionRecognizer: stopped early at epoch 2")
        reporter.stage("export", None)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert "EmotionRecognizer: training (8 steps)" in written and "25% (2/8)" in written
    assert lines == ["EmotionRecognizer: training (8 steps)", "EmotionRecognizer: training 25% (2/8)",
                     "EmotionRecognizer: epoch 1 val 0.5", "EmotionRecognizer: epoch 1 val 0.5 50% (5/8)",
                     "EmotionRecognizer: stopped early at epoch 2: done (5/8 steps)", "export", "export: done"]
    assert "\x1b" not in stream.getvalue() and "━" not in stream.getvalue()  # no escape codes, no bars


def test_a_bar_that_stopped_early_is_finished_and_its_clock_stops():
    from rich.console import Console

    from toolchain.kelly.progress import RichReporter

    reporter = RichReporter(Console(file=io.StringIO(), force_terminal=True))
    with reporter:
        reporter.stage("GroovePredictor: training", 100)
        reporter.advance(30)
        reporter.finish("GroovePredictor: stopped early at epoch 3")
        task = reporter.progress.tasks[0]
        assert task.finished and task.completed == task.total == 30
        assert task.description == "GroovePredictor: stopped early at epoch 3"
        # the clock is stopped: rich then reports stop_time - start_time, a fixed value (no sleep, no timing)
        assert task.stop_time is not None and task.start_time is not None
        reporter.stage("DynamicsEngine: training", 10)  # a new stage finishes the one before it
        reporter.advance(4)
    assert [t.finished for t in reporter.progress.tasks] == [True, True]


# ----------------------------------------------------------------------------------------- run timing
def test_run_reports_steady_state_time_without_the_compile(model_json, tmp_path, monkeypatch):
    """The first call (numba's compile, or its cache load) is made, timed and excluded before the timed run:
    here the first call is made to take 0.3 s, and the reported per-frame time must not contain it."""
    from reference_engine import streaming
    from reference_engine.model import Engine

    real_run, calls = Engine.run, []

    def first_call_slow(engine, frames):
        calls.append(len(frames))
        if len(calls) == 1:
            time.sleep(0.3)
        return real_run(engine, frames)

    monkeypatch.setattr(Engine, "run", first_call_slow)
    result = streaming.run_file(model_json, tmp_path / "x.npy", tmp_path / "y.npy")
    assert calls[0] == 1 and result.compile_seconds >= 0.3 and result.seconds < 0.3
    expected = real_run(_engine(model_json), np.load(tmp_path / "x.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)  # the warm-up frame left no state behind


def _engine(path):
    from reference_engine.model import load_engine

    engine = load_engine(path)
    engine.reset()
    return engine


def test_run_prints_the_steady_state_figure_and_the_compile_apart(model_json, tmp_path):
    result = invoke("run", model_json, "--input", tmp_path / "x.npy")
    assert result.exit_code == 0, result.output
    assert re.search(r"\(\d+\.\d\d us/frame, steady state; compilation \d+\.\d\d s before it, not counted\)", result.stdout)


# -------------------------------------------------------------------------------------------- messages
def test_a_pytorch_file_given_to_convert_says_to_export_it_first(tmp_path):
    from tests.conftest import require_modules

    torch = require_modules("torch")
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "model.pt")
    result = invoke("convert", tmp_path / "model.pt")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "model.pt: not an ONNX model (a PyTorch file written by torch.save: export it to ONNX first: torch.onnx.export(" in result.stderr
    assert "kelly_tc.from_torch(model, example, 'model.json')" in result.stderr


def test_swapped_check_arguments_say_which_comes_first(model_json, tmp_path):
    result = invoke("check", model_json, tmp_path / "model.onnx")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {model_json}: not an ONNX model (a JSON file: the ONNX model comes first, "
                             "kelly-tc check MODEL.onnx MODEL.json; convert takes MODEL.onnx)\n")


def test_a_non_audio_wav_says_why_it_is_unreadable(tmp_path):
    from tests.conftest import require_modules
    from toolchain.errors import InputError
    from toolchain.kelly.features import load_audio

    require_modules("librosa")
    (tmp_path / "notes.wav").write_text("these are my notes, not a recording\n")
    with pytest.raises(InputError) as raised:
        load_audio(tmp_path / "notes.wav")
    assert raised.value.line() == f"{tmp_path / 'notes.wav'}: unreadable audio (not a WAV file: no RIFF header)"


def test_a_bad_output_suffix_is_one_line_before_any_work(model_json, tmp_path):
    result = invoke("run", model_json, "--input", tmp_path / "x.npy", "-o", tmp_path / "out.txt")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'out.txt'}: unsupported frame file type '.txt'; use .npy or .csv\n"


def test_bench_off_a_terminal_writes_no_blank_lines_to_stderr(model_json):
    result = invoke("bench", model_json, "--frames", "30", "--warmup", "0")
    assert result.exit_code == 0 and result.stderr == ""


# ------------------------------------------------------------------------------------- install, bench/
def test_the_distribution_installs_kelly_tc_and_no_module_named_bench():
    from setuptools import find_packages

    include = re.search(r"^include = \[(.*?)\]", (REPO / "pyproject.toml").read_text(), re.M).group(1)
    patterns = re.findall(r'"([^"]+)"', include)
    packages = find_packages(str(REPO), include=patterns)
    assert "kelly_tc" in packages and "toolchain" in packages
    assert not [p for p in packages if p == "bench" or p.startswith("bench.")]
    assert not [p for p in packages if p.startswith("tests")]


def test_no_installed_package_or_test_helper_imports_bench():
    offenders = []
    for folder in ("kelly_tc", "toolchain", "quant", "reference_engine", "tests/fixtures"):
        for path in (REPO / folder).rglob("*.py"):
            if re.search(r"^\s*(from bench[. ]|import bench\b)", path.read_text(), re.M):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_compare_runtimes_quick_writes_beside_not_over_the_committed_results(monkeypatch):
    from bench import compare_runtimes

    chosen = []

    class Stop(Exception):
        pass

    def capture(quick, frames, warmup, rounds, runtimes, out):
        chosen.append((quick, out))
        raise Stop

    monkeypatch.setattr(compare_runtimes, "run", capture)
    for argv in (["--quick"], []):
        with pytest.raises(Stop):
            compare_runtimes.main(argv)
    assert chosen == [(True, compare_runtimes.QUICK_RESULTS), (False, compare_runtimes.RESULTS)]
    assert compare_runtimes.QUICK_RESULTS != compare_runtimes.RESULTS
    assert compare_runtimes.RESULTS not in compare_runtimes.QUICK_RESULTS.parents
