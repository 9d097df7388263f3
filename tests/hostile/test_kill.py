"""Nothing lost: a conversion and a training run killed with SIGKILL in the middle of writing leave the
previous output intact and loadable, and training resumed after the kill ends exactly where an
uninterrupted run with the same seed ends.

The kill is made deterministic by ``tests/hostile/paused_cli.py`` (the real CLI, stopped just before the
rename of one chosen write); a second test kills a conversion at random moments, with no hook at all.
"""
from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.conftest import REPO, require_modules
from tests.fixtures import onnx_graphs as graphs
from tests.hostile.paused_cli import PAUSED
from tests.hostile.support import CHECKPOINT_MODEL, kelly_tc, kelly_tc_command, kelly_tc_environment
from toolchain.rtneural_json import read_model

HIDDEN, FEATURES = 320, 64  # an LSTM of ~0.5 M parameters: a 5 MB JSON file


def large_lstm(path, seed: int):
    rng = np.random.default_rng(seed)
    proto = graphs.lstm(graphs.random(rng, 1, 4 * HIDDEN, FEATURES), graphs.random(rng, 1, 4 * HIDDEN, HIDDEN),
                        graphs.random(rng, 1, 8 * HIDDEN), layout=1, squeeze=True)
    return graphs.save(proto, path)


def start_paused(target: str, arguments) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.hostile.paused_cli", target, *map(str, arguments)]
    return subprocess.Popen(command, cwd=REPO, env=kelly_tc_environment(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def kill_when_paused(process: subprocess.Popen, timeout: float = 240) -> str:
    """Wait for the PAUSED line, SIGKILL the process, return the line."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            assert process.poll() is None, "the process ended without reaching the paused write"
            continue
        if line.startswith(PAUSED):
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            return line
    process.kill()
    pytest.fail("the paused write was never reached")


def leftovers(folder, name: str) -> list[str]:
    """Temporary files of ``toolchain.atomic`` for ``name`` (a SIGKILL cannot remove them)."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith(f".{name}."))


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return large_lstm(folder / "old.onnx", seed=1), large_lstm(folder / "new.onnx", seed=2)


def test_a_conversion_killed_before_its_rename_leaves_the_previous_json(two_models, tmp_path):
    old, new = two_models
    target = tmp_path / "model.json"
    assert kelly_tc("convert", old, "-o", target).returncode == 0
    previous = target.read_bytes()
    line = kill_when_paused(start_paused("model.json:1", ["convert", new, "-o", target]))
    assert str(target) in line
    assert target.read_bytes() == previous  # the old file, byte for byte
    assert read_model(target).layers[0].weight_hh.shape == (4 * HIDDEN, HIDDEN)
    (temporary,) = leftovers(tmp_path, "model.json")  # the complete new file, never renamed
    assert read_model(tmp_path / temporary).parameter_count() == read_model(target).parameter_count()
    assert kelly_tc("convert", new, "-o", target).returncode == 0  # the next run replaces it
    assert target.read_bytes() != previous


def test_conversions_killed_at_random_moments_leave_the_old_or_the_new_file(two_models, tmp_path):
    old, new = two_models
    reference = tmp_path / "reference"
    reference.mkdir()
    assert kelly_tc("convert", old, "-o", reference / "old.json").returncode == 0
    started = time.monotonic()
    assert kelly_tc("convert", new, "-o", reference / "new.json").returncode == 0
    duration = time.monotonic() - started
    versions = {(reference / "old.json").read_bytes(): "old", (reference / "new.json").read_bytes(): "new"}
    target = tmp_path / "model.json"
    seen = []
    for attempt in range(2):
        target.write_bytes((reference / "old.json").read_bytes())
        process = subprocess.Popen([*kelly_tc_command(), "convert", str(new), "-o", str(target)], cwd=REPO,
                                   env=kelly_tc_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.Random(attempt).uniform(0.5, 1.0) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        seen.append(versions.get(target.read_bytes(), "corrupt"))
        read_model(target)
    assert "corrupt" not in seen, seen


def _train(output, config, *extra, env=None):
    return kelly_tc("train", "--config", config, "--output", output, *extra, env=env)


@pytest.fixture(scope="module")
def training_config(tmp_path_factory):
    require_modules("torch")
    config = tmp_path_factory.mktemp("config") / "train.json"
    config.write_text(json.dumps({"models": [CHECKPOINT_MODEL], "source": "synthetic", "epochs": 4, "seq_len": 8,
                                  "batch_size": 16, "synthetic_sequences": 48, "patience": 10, "plot": False}))
    return config


def test_training_killed_mid_checkpoint_keeps_the_last_checkpoint_and_resumes_to_the_same_weights(training_config, tmp_path):
    import torch

    from toolchain.kelly.checkpoint import BEST, LATEST, load_checkpoint

    from toolchain.kelly.config import load_config
    from toolchain.kelly.training import train_models

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train_models(load_config(training_config, output=str(whole)))  # the uninterrupted run, in this process
    kill_when_paused(start_paused(f"{LATEST}:3", ["train", "--config", training_config, "--output", killed]))
    folder = killed / CHECKPOINT_MODEL
    assert load_checkpoint(folder / LATEST)["epoch"] == 2  # epoch 3's checkpoint never replaced it
    load_checkpoint(folder / BEST)
    assert len(leftovers(folder, LATEST)) == 1
    result = _train(killed, training_config, "--resume")
    assert result.returncode == 0, result.stderr
    for name in (BEST, LATEST):
        expected, resumed = load_checkpoint(whole / CHECKPOINT_MODEL / name), load_checkpoint(folder / name)
        assert expected["epoch"] == resumed["epoch"]
        for key, value in expected["model_state"].items():
            assert torch.equal(value, resumed["model_state"][key]), (name, key)
    history = [json.loads((run / CHECKPOINT_MODEL / "history.json").read_text())["epochs"] for run in (whole, killed)]
    assert [row["val_loss"] for row in history[0]] == [row["val_loss"] for row in history[1]]
