"""Training utilities: learning beats the mean baseline, early stopping restores the best weights,
resume after a kill equals an uninterrupted run, damaged checkpoints are refused, the config is read."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from tests.conftest import require_modules

torch = require_modules("torch")
from typer.testing import CliRunner  # noqa: E402

from toolchain.cli import app  # noqa: E402
from toolchain.errors import InputError  # noqa: E402
from toolchain.kelly.checkpoint import BEST, LATEST, MAGIC, load_checkpoint, load_trained_model  # noqa: E402
from toolchain.kelly.config import load_config  # noqa: E402
from toolchain.kelly.datasets.base import ModelData, Sequences  # noqa: E402
from toolchain.kelly.datasets.synthetic import synthetic_sequences  # noqa: E402
from toolchain.kelly.progress import Reporter  # noqa: E402
from toolchain.kelly.training import evaluate, train_model  # noqa: E402


def synthetic_data(name: str, count: int = 96, seq_len: int = 16, seed: int = 0) -> ModelData:
    data = synthetic_sequences(name, count, seq_len, seed)
    cut = count * 3 // 4
    return ModelData(name, data.take(np.arange(cut)), data.take(np.arange(cut, count)), ["synthetic"])


def small_config(tmp_path, **overrides):
    settings = dict(source="synthetic", output=str(tmp_path), epochs=6, batch_size=16, seq_len=16,
                    learning_rate=3e-3, patience=3, plot=False)
    return load_config(**{**settings, **overrides})


# (model, largest val/baseline ratio accepted): mse on sigmoid and tanh outputs, cross-entropy on softmax.
# Cross-entropy against soft targets cannot fall below the targets' entropy, so its bar is the share of
# the learnable gap (baseline - entropy) closed as well.
LEARNING_BARS = [("EmotionRecognizer", 0.6), ("MelodyTransformer", 0.7), ("HarmonyPredictor", 0.85),
                 ("DynamicsEngine", 0.5), ("GroovePredictor", 0.5)]


@pytest.mark.parametrize("name, ratio", LEARNING_BARS)
def test_short_synthetic_run_beats_the_mean_baseline_clearly(name, ratio, tmp_path):
    config = small_config(tmp_path, epochs=8)
    _, result = train_model(synthetic_data(name, count=160), config, tmp_path / name)
    assert result.ratio < ratio, result
    assert result.gap_closed > 0.3, result


def test_early_stopping_restores_the_best_weights(tmp_path):
    """Validation targets are the negated training targets: fitting the training set makes validation
    worse, so the best epoch is an early one and the final epoch's weights must be discarded."""
    clean = synthetic_data("GroovePredictor")
    adversarial = ModelData(clean.name, clean.train, Sequences(clean.train.inputs, -clean.train.targets, clean.train.groups),
                            ["synthetic"])
    config = small_config(tmp_path, epochs=20, patience=2)
    model, result = train_model(adversarial, config, tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())["epochs"]
    initial = load_checkpoint(tmp_path / LATEST)
    assert result.stopped_early and result.epochs_run < 20
    val_losses = [row["val_loss"] for row in history]
    assert result.best_epoch < result.epochs_run and min(val_losses) < val_losses[-1]
    best = load_checkpoint(tmp_path / BEST)
    assert best["epoch"] == result.best_epoch
    for key, value in model.state_dict().items():
        assert torch.equal(value, best["model_state"][key])
    assert any(not torch.equal(value, initial["model_state"][key]) for key, value in model.state_dict().items())
    batch_size = config.windows(model.spec.name)[2]  # the batch the trainer evaluated with (long-context model)
    assert evaluate(model, model.spec, adversarial.validation, batch_size) == result.best_val_loss == best["val_loss"]


class KillDuringEpoch(Reporter):
    """Raises KeyboardInterrupt in the middle of epoch ``epoch`` (as a kill would stop the run)."""

    def __init__(self, epoch: int, batches_per_epoch: int):
        self.batches_left = (epoch - 1) * batches_per_epoch + batches_per_epoch // 2

    def advance(self, steps=1, description=None):
        self.batches_left -= steps
        if steps and self.batches_left <= 0:
            raise KeyboardInterrupt


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(tmp_path):
    data = synthetic_data("DynamicsEngine")
    # the plain batch size of 16 (5 batches per epoch, as KillDuringEpoch counts): no long-context batches
    config = small_config(tmp_path, epochs=4, patience=10, long_context_models=[])
    uninterrupted, _ = train_model(data, config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train_model(data, config, tmp_path / "killed", KillDuringEpoch(epoch=3, batches_per_epoch=5))
    assert load_checkpoint(tmp_path / "killed" / LATEST)["epoch"] == 2
    resumed, result = train_model(data, small_config(tmp_path, epochs=4, patience=10, resume=True, long_context_models=[]),
                                  tmp_path / "killed")
    assert result.epochs_run == 4
    for key, value in uninterrupted.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    whole = json.loads((tmp_path / "whole" / "history.json").read_text())["epochs"]
    again = json.loads((tmp_path / "killed" / "history.json").read_text())["epochs"]
    assert [row["val_loss"] for row in whole] == [row["val_loss"] for row in again]


def test_the_same_seed_gives_the_same_weights_and_another_seed_other_weights(tmp_path):
    data = synthetic_data("DynamicsEngine", count=32)
    first, _ = train_model(data, small_config(tmp_path, epochs=2), tmp_path / "a")
    second, _ = train_model(data, small_config(tmp_path, epochs=2), tmp_path / "b")
    other, _ = train_model(data, small_config(tmp_path, epochs=2, seed=1), tmp_path / "c")
    weight = "body.0.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


def test_resume_with_different_settings_is_refused(tmp_path):
    data = synthetic_data("DynamicsEngine", count=32)
    train_model(data, small_config(tmp_path, epochs=1), tmp_path)
    with pytest.raises(InputError, match="learning_rate"):
        train_model(data, small_config(tmp_path, epochs=2, learning_rate=1e-2, resume=True), tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trained")
    data = synthetic_data("DynamicsEngine", count=32)
    train_model(data, small_config(directory, epochs=1), directory / "DynamicsEngine")
    return directory


def test_trained_model_loads_back_from_its_checkpoint(trained):
    model = load_trained_model(trained, "DynamicsEngine")
    best = load_checkpoint(trained / "DynamicsEngine" / BEST)
    for key, value in model.state_dict().items():
        assert torch.equal(value, best["model_state"][key])


def test_a_flipped_byte_in_a_checkpoint_is_refused(trained, tmp_path):
    raw = bytearray((trained / "DynamicsEngine" / BEST).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / BEST).write_bytes(bytes(raw))
    with pytest.raises(InputError, match="SHA-256 does not match"):
        load_checkpoint(tmp_path / BEST)


def test_a_truncated_checkpoint_is_refused(trained, tmp_path):
    raw = (trained / "DynamicsEngine" / LATEST).read_bytes()
    (tmp_path / LATEST).write_bytes(raw[: len(raw) - 100])
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(tmp_path / LATEST)


def test_a_file_without_our_header_is_refused(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model_state": {}}, buffer)
    (tmp_path / "plain.pt").write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match="missing header"):
        load_checkpoint(tmp_path / "plain.pt")


class NotATensor:
    pass


def test_pickled_objects_are_refused_even_with_a_matching_digest(tmp_path):
    buffer = io.BytesIO()
    torch.save({"model_state": {}, "payload": NotATensor()}, buffer)
    data = buffer.getvalue()
    header = MAGIC + b"sha256 " + hashlib.sha256(data).hexdigest().encode() + b"\n"
    (tmp_path / "evil.ckpt").write_bytes(header + data)
    with pytest.raises(InputError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.ckpt")


def test_resume_from_a_corrupt_latest_checkpoint_is_refused(trained, tmp_path):
    directory = tmp_path / "DynamicsEngine"
    directory.mkdir()
    raw = bytearray((trained / "DynamicsEngine" / LATEST).read_bytes())
    raw[-10] ^= 0xFF
    (directory / LATEST).write_bytes(bytes(raw))
    with pytest.raises(InputError, match="SHA-256"):
        train_model(synthetic_data("DynamicsEngine", count=32), small_config(tmp_path, resume=True), directory)


# ------------------------------------------------------------------------------------- the command
def run_cli(*args):
    return CliRunner().invoke(app, ["train", *args])


def test_train_command_reads_the_config_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"models": ["GroovePredictor"], "source": "synthetic", "epochs": 2, "seq_len": 8,
                                  "synthetic_sequences": 40, "output": str(tmp_path / "out"), "plot": False}))
    result = run_cli("--config", str(config))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert list(summary["models"]) == ["GroovePredictor"]
    assert summary["models"]["GroovePredictor"]["epochs_run"] == 2
    assert summary["config"]["seq_len"] == 8 and summary["config"]["synthetic_sequences"] == 40
    assert (tmp_path / "out" / "GroovePredictor" / "history.csv").read_text().startswith("epoch,train_loss,val_loss")
    assert "GroovePredictor" in result.output and "baseline" in result.output


def test_command_line_options_override_the_config_file(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"models": ["DynamicsEngine"], "source": "synthetic", "epochs": 5, "seq_len": 8,
                                  "synthetic_sequences": 24, "plot": False}))
    result = run_cli("--config", str(config), "--epochs", "1", "--output", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["models"]["DynamicsEngine"]["epochs_run"] == 1


def test_models_option_takes_a_comma_separated_list(tmp_path):
    result = run_cli("--models", "DynamicsEngine,GroovePredictor", "--source", "synthetic", "--epochs", "1",
                     "--seq-len", "4", "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "training_summary.json").read_text())
    assert list(summary["models"]) == ["DynamicsEngine", "GroovePredictor"]


@pytest.mark.parametrize("content, where", [({"epochz": 3}, "epochz: unknown setting"),
                                            ({"epochs": "3"}, "epochs: must be int"),
                                            ({"models": ["Nope"]}, "models: unknown Kelly model")])
def test_a_bad_config_file_is_refused_naming_the_key(tmp_path, content, where):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(content))
    result = run_cli("--config", str(config), "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert f"{config}: {where}" in result.output
