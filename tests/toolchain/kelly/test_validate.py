"""``kelly-tc validate DIR --check-specs``: good models pass; each kind of broken model is named in
one line, with exit 1 for a failed check (spec, reference pair, softmax range) and 2 for a broken file
(missing, corrupt). The broken models are copies of ``kelly_models`` altered on disk."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import require_modules

require_modules("torch")
from typer.testing import CliRunner  # noqa: E402

from toolchain.cli import app  # noqa: E402
from toolchain.kelly.spec import MODEL_NAMES  # noqa: E402
from toolchain.kelly.validate import BROKEN, FAILED, NO_REFERENCE, OK, REFERENCE, SOFTMAX_RANGE, SPEC, validate_directory  # noqa: E402


def invoke(*arguments):
    return CliRunner().invoke(app, [str(a) for a in arguments])


@pytest.fixture
def models_dir(kelly_models, tmp_path):
    """A private copy of the exported models (tests alter it)."""
    return kelly_models.copy_json(tmp_path / "models")


def edit(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def verdict(report, name):
    return next(m for m in report.models if m.name == name)


def test_exported_models_pass_every_check(models_dir):
    report = validate_directory(models_dir, check_specs=True)
    assert report.exit_code == 0 and report.lines() == []
    for model in report.models:
        assert model.status == OK and model.reference_frames == 8 and model.reference_error <= 1e-5
    assert verdict(report, "HarmonyPredictor").max_logit is not None


def test_cli_exits_0_and_prints_a_row_per_model(models_dir):
    result = invoke("validate", models_dir, "--check-specs")
    assert result.exit_code == 0, result.stderr
    assert all(name in result.stdout for name in MODEL_NAMES) and result.stderr == ""


def test_tampered_weight_fails_the_reference_pair_with_exit_1(models_dir):
    path = models_dir / "GroovePredictor.json"
    edit(path, lambda d: d["layers"][0]["weights"][1].__setitem__(3, d["layers"][0]["weights"][1][3] + 0.05))
    result = invoke("validate", models_dir, "--check-specs")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: reference pair not reproduced: max abs error")
    report = validate_directory(models_dir, check_specs=True)
    assert [f.check for f in verdict(report, "GroovePredictor").failures] == [REFERENCE]


def test_wrong_sizes_fail_the_spec_check(models_dir, kelly_models):
    """DynamicsEngine's file saved as GroovePredictor: it reproduces its own pair but is the wrong model."""
    shutil.copy(kelly_models.json_paths["DynamicsEngine"], models_dir / "GroovePredictor.json")
    result = verdict(validate_directory(models_dir, check_specs=True), "GroovePredictor")
    assert result.status == FAILED and {f.check for f in result.failures} == {SPEC}
    messages = " ".join(f.message for f in result.failures)
    assert "holds DynamicsEngine, not GroovePredictor" in messages
    assert "maps 32 -> 16, the spec 64 -> 32" in messages
    assert "19,568 parameters, the spec 24,784" in messages


def test_a_different_hidden_size_is_named_in_the_layer_stack(models_dir):
    """Same input and output sizes, LSTM 40 instead of 44: only the stack and the count differ."""
    import dataclasses

    import torch

    from toolchain.cpp.reference_pair import set_reference_pair
    from toolchain.kelly.models import KellyModel, reference_pair, to_layer_model
    from toolchain.kelly.spec import LayerSpec, get_spec
    from toolchain.rtneural_json import write_model

    spec = get_spec("GroovePredictor")
    smaller = dataclasses.replace(spec, layers=(spec.layers[0], LayerSpec("lstm", 40), spec.layers[2]))
    torch.manual_seed(0)
    model = KellyModel(smaller).eval()
    layers = to_layer_model(model)
    set_reference_pair(layers, *map(np.asarray, reference_pair(model)))
    write_model(layers, models_dir / "GroovePredictor.json")
    result = verdict(validate_directory(models_dir, check_specs=True), "GroovePredictor")
    messages = [f.message for f in result.failures]
    assert messages == ["layers dense64 relu -> lstm40 -> dense32 tanh differ from the spec's dense64 relu -> lstm44 -> dense32 tanh",
                        "22,272 parameters, the spec 24,784 (target 25,000 +-10%)"]  # 64*64+64 + 4*40*(64+40+1) + 40*32+32


def test_without_check_specs_only_loading_and_the_pair_count(models_dir, kelly_models):
    shutil.copy(kelly_models.json_paths["DynamicsEngine"], models_dir / "GroovePredictor.json")
    assert validate_directory(models_dir, check_specs=False).exit_code == 0


def test_missing_file_is_a_broken_file_with_exit_2(models_dir):
    (models_dir / "MelodyTransformer.json").unlink()
    result = invoke("validate", models_dir, "--check-specs")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {models_dir / 'MelodyTransformer.json'}: missing (export writes it: kelly-tc export)"


def test_corrupt_json_is_a_broken_file_with_exit_2(models_dir):
    path = models_dir / "HarmonyPredictor.json"
    path.write_bytes(path.read_bytes()[:5000])
    result = invoke("validate", models_dir, "--check-specs")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: not a readable JSON file")


def test_one_line_per_broken_model_and_the_worst_sets_the_exit_code(models_dir):
    (models_dir / "MelodyTransformer.json").unlink()
    edit(models_dir / "DynamicsEngine.json", lambda d: d["layers"][2]["weights"][1].__setitem__(0, 9.0))
    result = invoke("validate", models_dir)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 2
    assert "MelodyTransformer.json: missing" in lines[0] and "DynamicsEngine.json: reference pair not reproduced" in lines[1]


def test_a_file_without_a_reference_pair_fails(models_dir):
    edit(models_dir / "DynamicsEngine.json", lambda d: d["kelly_tc"].pop("reference"))
    result = verdict(validate_directory(models_dir), "DynamicsEngine")
    assert result.status == FAILED and [f.check for f in result.failures] == [NO_REFERENCE]


def test_a_malformed_reference_pair_is_a_broken_file(models_dir):
    edit(models_dir / "DynamicsEngine.json", lambda d: d["kelly_tc"]["reference"]["input"][0].pop())
    result = verdict(validate_directory(models_dir), "DynamicsEngine")
    assert result.status == BROKEN and "kelly_tc/reference/input" in result.broken[0]


def test_softmax_logits_beyond_rtneurals_range_fail(models_dir):
    """A +90 bias on every logit: RTNeural's unshifted softmax gives NaN; validate names the range."""
    edit(models_dir / "HarmonyPredictor.json",
         lambda d: d["layers"][-1]["weights"].__setitem__(1, [b + 90.0 for b in d["layers"][-1]["weights"][1]]))
    result = verdict(validate_directory(models_dir, check_specs=True), "HarmonyPredictor")
    checks = [f.check for f in result.failures]
    assert checks == [SOFTMAX_RANGE, REFERENCE], result.failures
    assert result.max_logit > 88 and "can overflow above 84.6" in result.failures[0].message


def test_missing_directory_is_bad_input(tmp_path):
    result = invoke("validate", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such folder" in result.stderr
