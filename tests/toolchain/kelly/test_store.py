"""The feature store (``kelly-tc features`` without a cluster): shards, manifest, resume, failures,
verification, and training from it. The Dask and torchrun paths are in test_scale_cluster.py."""
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

from tests.conftest import REPO, require_modules

require_modules("pretty_midi", "librosa", "torch")

from toolchain.kelly import featurize, store as feature_store  # noqa: E402
from toolchain.kelly.synthetic_corpus import write_corpus  # noqa: E402

SETTINGS = featurize.store_settings(max_seconds=60.0, seed=0, seq_len=16, render_lakh=True)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "toolchain.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root, lakh=3, groove=9, corrupt=1, seconds=4.0)
    return root


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    jobs = featurize.list_jobs(store, SETTINGS, "datasets", corpus)
    summary = featurize.run_jobs(jobs, featurize.local_results(jobs), store, SETTINGS)
    return store, jobs, summary


def test_every_source_file_becomes_a_shard_or_a_failure(built):
    store, jobs, summary = built
    assert (summary.total, summary.done, summary.kept, summary.failed) == (13, 12, 0, 1)
    records, _ = feature_store.read_manifest(store)
    assert set(records) == {job.key for job in jobs}
    failed = [r for r in records.values() if r.status == "failed"]
    assert [r.key for r in failed] == ["lakh:f/corrupt0000.mid"]
    assert "not a readable MIDI file" in failed[0].error and "\n" not in failed[0].error


def test_shards_hold_what_in_memory_training_computes(built, corpus):
    """One implementation: the shard of a MIDI file equals model_arrays of the piece the loader makes."""
    from toolchain.kelly.datasets.base import model_arrays
    from toolchain.kelly.datasets.midi_trees import tree_piece

    store, _, _ = built
    records, _ = feature_store.read_manifest(store)
    record = records[next(k for k in sorted(records) if k.startswith("groove:"))]
    piece = tree_piece(Path(record.source), corpus / "groove", "groove", 60.0, render=True)  # every model hears audio
    for model, frames in record.pieces[0]["frames"].items():
        inputs, targets = feature_store.read_piece(store / record.shard, 0, model)
        expected = model_arrays(model, piece)
        assert inputs.shape[0] == frames
        np.testing.assert_array_equal(inputs, expected[0])
        np.testing.assert_array_equal(targets, expected[1])


def test_a_rerun_keeps_up_to_date_shards_and_recomputes_a_changed_source(built, corpus, tmp_path):
    store, jobs, _ = built
    summary = featurize.run_jobs(jobs, featurize.local_results(jobs), store, SETTINGS)
    assert (summary.done, summary.kept, summary.failed) == (0, 12, 1)
    # A different feature version (e.g. new feature code) recomputes everything of that version.
    other = {**SETTINGS, "max_seconds": 3.0}
    changed = featurize.list_jobs(store, other, "datasets", corpus)[:2]
    assert all(job.version != jobs[0].version for job in changed)
    summary = featurize.run_jobs(changed, featurize.local_results(changed), store, other)
    assert summary.done == 2 and summary.kept == 0


def test_split_is_a_function_of_the_manifest(built):
    store, _, _ = built
    first = feature_store.FeatureStore(store).pieces("GroovePredictor", seed=0, val_fraction=0.3)
    again = feature_store.FeatureStore(store).pieces("GroovePredictor", seed=0, val_fraction=0.3)
    assert first == again and first[0] and first[1]
    keys = lambda refs: {r.key for r in refs}  # noqa: E731
    assert not keys(first[0]) & keys(first[1])  # by piece: never one piece on both sides
    # Stable under growth: a piece's side depends on its key alone, not on the other records.
    assert all(feature_store.is_validation(r.key, r.index, 0, 0.3) for r in first[1][:-1] or first[1])


def test_a_tampered_shard_is_refused_by_train_with_one_line(built, tmp_path):
    store, _, _ = built
    copy = tmp_path / "store"
    subprocess.run(["cp", "-r", str(store), str(copy)], check=True)
    records, _ = feature_store.read_manifest(copy)
    shard = copy / next(r.shard for r in records.values() if r.status == "ok")
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF
    shard.write_bytes(bytes(data))
    result = cli("train", "--store", str(copy), "-o", str(tmp_path / "out"), "--epochs", "1")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "SHA-256" in lines[0] and "manifest" in lines[0]
    assert not (tmp_path / "out").exists()


def test_features_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, reason in ((["--store", str(tmp_path / "file"), "--source", "synthetic", "--workers", "0"], "not a folder"),
                         (["--store", str(tmp_path / "s")], "exactly one of"),
                         (["--store", str(tmp_path / "s"), "--datasets-dir", str(tmp_path / "none"), "--workers", "0"], "no such folder"),
                         (["--store", str(tmp_path / "s"), "--source", "synthetic", "--workers", "-1"], "--workers")):
        result = cli("features", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and reason in lines[0], (args, result.stderr)
    assert not (tmp_path / "s").exists()


def test_a_killed_run_resumes_and_recomputes_only_what_was_missing(corpus, tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "toolchain.cli", "features", "--datasets-dir", str(corpus),
                                "--store", str(store), "--workers", "0"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((store / "shards").rglob("*.npz"))) < 4 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name for p in (store / "shards").rglob("[!.]*.npz")}
    assert 4 <= len(finished) < 12, "the run must be killed part-way"
    jobs = featurize.list_jobs(store, featurize.store_settings(60.0, 0, 32, True), "datasets", corpus)
    summary = featurize.run_jobs(jobs, featurize.local_results(jobs), store, featurize.store_settings(60.0, 0, 32, True))
    assert summary.kept == len(finished)  # every shard the killed run finished is kept ...
    assert summary.done == 12 - len(finished) and summary.failed == 1  # ... and only the rest is computed
    feature_store.FeatureStore(store)  # the resumed store verifies


def test_train_from_a_store_learns_and_reports_the_store(tmp_path):
    """A loose "learned something" check on the learnable synthetic source, streamed from shards."""
    from toolchain.kelly.config import load_config
    from toolchain.kelly.training import train_models

    store = tmp_path / "store"
    settings = featurize.store_settings(60.0, 0, 32, True)
    jobs = featurize.list_jobs(store, settings, "synthetic", synthetic_groups=8)
    featurize.run_jobs(jobs, featurize.local_results(jobs), store, settings)
    config = load_config(None, store=str(store), output=str(tmp_path / "out"), epochs=8, models=["DynamicsEngine"],
                         plot=False, buffer_pieces=2)
    report = train_models(config)
    result = report.results["DynamicsEngine"]
    assert result.train_sequences + result.val_sequences == 8 * featurize.SYNTHETIC_GROUP
    assert result.ratio < 0.95  # val loss below the predict-the-mean baseline: it learned something
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["config"]["store"] == str(store) and summary["processes"] == 1
