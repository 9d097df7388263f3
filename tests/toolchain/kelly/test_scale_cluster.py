"""Scale on this machine: a local 2-worker Dask cluster builds the same store as one process, and
torchrun trains with 2 gloo processes (rank 0 writes; --resume works under torchrun)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, require_modules

require_modules("pretty_midi", "librosa", "torch", "distributed")

from toolchain.kelly import featurize, store as feature_store  # noqa: E402
from toolchain.kelly.synthetic_corpus import write_corpus  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def arrays(store: Path) -> dict:
    """Every shard's arrays by (source key, piece, model): what must not depend on where a task ran."""
    records, _ = feature_store.read_manifest(store)
    result = {}
    for record in records.values():
        if record.status == "ok":
            for index, piece in enumerate(record.pieces):
                for model in piece["frames"]:
                    result[record.key, index, model] = feature_store.read_piece(store / record.shard, index, model)
    return result


def test_a_local_two_worker_cluster_builds_the_single_process_store(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, lakh=4, groove=44, corrupt=2, seconds=3.0)  # 50 files, two of them corrupt
    single, clustered = tmp_path / "single", tmp_path / "cluster"
    result = subprocess.run([sys.executable, "-m", "toolchain.cli", "features", "--datasets-dir", str(corpus),
                             "--store", str(clustered), "--workers", "2"], capture_output=True, text=True,
                            env=ENV, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "local Dask cluster of 2 worker processes; dashboard: http" in result.stderr
    assert "features: 50/50 files" in result.stderr  # plain progress lines when stderr is not a terminal
    assert "48 computed, 0 already up to date, 2 failed" in result.stdout
    # The reference: the same command in one process (--workers 0), with BLAS single-threaded as Dask runs its
    # workers (its nanny sets OMP/MKL/OPENBLAS_NUM_THREADS=1): a multi-threaded BLAS sums in another order, and
    # features in dB relative to a frame's loudest bin turn that last-bit difference into visible ones in
    # near-silent frames. With the same threading, where a task ran must not change a single bit.
    single_threaded = {**ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    reference = subprocess.run([sys.executable, "-m", "toolchain.cli", "features", "--datasets-dir", str(corpus),
                                "--store", str(single), "--workers", "0"], capture_output=True, text=True,
                               env=single_threaded, cwd=REPO, timeout=300)
    assert reference.returncode == 0, reference.stderr
    expected, actual = arrays(single), arrays(clustered)
    assert len(expected) > 48 and expected.keys() == actual.keys()
    for key, (inputs, targets) in expected.items():
        np.testing.assert_array_equal(actual[key][0], inputs, err_msg=str(key))
        np.testing.assert_array_equal(actual[key][1], targets, err_msg=str(key))
    manifest = json.loads((clustered / "manifest.json").read_text())
    failed = [r for r in manifest["records"] if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["error"] for r in failed)


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("synthetic-store")
    settings = featurize.store_settings(60.0, 0, 32, True)
    jobs = featurize.list_jobs(store, settings, "synthetic", synthetic_groups=6)
    featurize.run_jobs(jobs, featurize.local_results(jobs), store, settings)
    return store


def torchrun(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "toolchain.cli", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=300)


def test_torchrun_trains_with_two_gloo_processes_and_resumes(synthetic_store, tmp_path):
    out = tmp_path / "out"
    common = ["--store", str(synthetic_store), "--models", "GroovePredictor", "--batch-size", "16", "-o", str(out)]
    result = torchrun(*common, "--epochs", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["models"]["GroovePredictor"]["epochs_run"] == 1
    assert (out / "GroovePredictor" / "latest.ckpt").is_file()
    assert result.stdout.count("Kelly training") == 1  # rank 0 alone reports
    assert not list(out.rglob(".*.tmp"))  # no rank left a temporary file behind
    resumed = torchrun(*common, "--epochs", "2", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    history = json.loads((out / "GroovePredictor" / "history.json").read_text())
    assert [row["epoch"] for row in history["epochs"]] == [1, 2]  # epoch 1 kept, epoch 2 trained


def test_distributed_training_without_a_store_is_refused(tmp_path):
    result = torchrun("--source", "synthetic", "--models", "GroovePredictor", "-o", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "distributed training reads a feature store: add --store" in result.stderr
