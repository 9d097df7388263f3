"""Issue 17, point 8: SIGINT from the first instruction and SIGTERM end a command with one line
``error: interrupted``, exit 130 / 143, the previous output intact and no temporary file left; and
``train --resume`` removes the temporaries of an interrupted run.

The signal reaches the real ``kelly-tc`` in a subprocess. The mid-write cases use
``tests/hostile/paused_cli.py`` (the real CLI stopped just before one rename: a complete temporary
file exists then), so the outcome is deterministic, not a race.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, unavailable
from tests.fixtures import onnx_graphs as graphs
from tests.hostile.support import kelly_tc_environment
from tests.hostile.paused_cli import PAUSED
from tests.hostile.test_kill import start_paused


@pytest.fixture
def model(tmp_path):
    rng = np.random.default_rng(23)
    return graphs.save(graphs.dense(graphs.random(rng, 5, 7), graphs.random(rng, 7), "Tanh"), tmp_path / "m.onnx")


def signal_when_paused(process: subprocess.Popen, number: int, timeout: float = 240) -> str:
    """Read stderr until the PAUSED line, send ``number``, return the rest of stderr."""
    deadline = time.monotonic() + timeout
    for line in process.stderr:
        if line.startswith(PAUSED):
            process.send_signal(number)
            rest = process.stderr.read()
            process.wait(timeout=60)
            return rest
        assert time.monotonic() < deadline, "the process never reached the paused write"
    raise AssertionError(f"the process ended without reaching the paused write (exit {process.wait()})")


@pytest.mark.parametrize("number,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_write_removes_the_temporary_and_keeps_the_old_file(model, tmp_path, number, code):
    target = tmp_path / "m.json"
    target.write_text("old output")
    process = start_paused("m.json:1", ["convert", model, "-o", target])
    stderr = signal_when_paused(process, number)
    assert process.returncode == code, stderr
    assert stderr == "error: interrupted\n"
    assert target.read_text() == "old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx"]


def _script() -> list[str]:
    """The installed ``kelly-tc`` script run by this interpreter (no shell shim in between), so its
    start-up can be measured against the bare interpreter's."""
    script = Path(sys.executable).parent / "kelly-tc"
    if not script.is_file():
        unavailable(f"no kelly-tc script beside {sys.executable} (pip install -e .)")
    return [sys.executable, str(script)]


@pytest.fixture(scope="module")
def interpreter_start_up() -> float:
    """Seconds the bare interpreter needs to start (site imports included): before that, Python's own
    default handlers run and no program can do anything about a signal."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - started)
    return max(times)


@pytest.mark.parametrize("after", [0.05, 0.3])
@pytest.mark.parametrize("number,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_gives_one_line(model, tmp_path, interpreter_start_up, after, number, code):
    """The imports take seconds (typer, rich, numpy, onnx): a Ctrl-C there printed a 30-line traceback.
    The signal comes ``after`` seconds past the interpreter's own start-up (measured)."""
    process = subprocess.Popen([*_script(), "convert", str(model), "-o", str(tmp_path / "out.json")], cwd=REPO,
                               env=kelly_tc_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(interpreter_start_up + after)
    process.send_signal(number)
    stdout, stderr = process.communicate(timeout=120)
    if process.returncode == 0:  # the whole conversion beat the signal: then its output must be whole
        assert json.loads((tmp_path / "out.json").read_text())["layers"] and "Traceback" not in stderr
        return
    assert (process.returncode, stderr) == (code, "error: interrupted\n"), stderr
    assert not (tmp_path / "out.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_resume_removes_the_temporaries_of_an_interrupted_run(tmp_path):
    from toolchain.kelly.config import load_config
    from toolchain.kelly.training import train_models

    from tests.hostile.support import CHECKPOINT_MODEL

    output = tmp_path / "training"
    settings = dict(models=[CHECKPOINT_MODEL], source="synthetic", epochs=1, seq_len=8, batch_size=16,
                    synthetic_sequences=48, output=str(output), plot=False)
    train_models(load_config(**settings))
    stale = output / CHECKPOINT_MODEL / ".history.csv.k2x9_q1z.tmp"  # what a SIGKILL mid-write leaves
    stale.write_text("half a history")
    train_models(load_config(**settings, resume=True))
    assert not stale.exists()
    assert [p.name for p in output.rglob("*") if ".tmp" in p.name] == []
