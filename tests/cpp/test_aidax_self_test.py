"""The ``kelly-tc cpp`` header's ``self_test()`` replays an AIDA-X file's own input_batch/output_batch in
the real RTNeural (compile-time API), so a plugin can verify a downloaded model on load."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.cpp.conftest import TOLERANCE
from tests.toolchain.test_check_json import aidax_file
from toolchain.cli import app

EXAMPLE = REPO / "examples" / "cpp" / "deploy.cpp"


def self_test_error(json_path, rtneural_src, folder) -> float:
    shutil.copy(EXAMPLE, folder / "deploy.cpp")
    result = CliRunner().invoke(app, ["cpp", str(json_path), "-o", str(folder / "model.h"), "--name", "Model",
                                      "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    assert "self_test() over 60 reference frames" in result.stdout
    subprocess.run(["g++", "-std=c++17", "-O1", "-I", str(rtneural_src), "deploy.cpp", "-o", "deploy"],
                   cwd=folder, check=True, capture_output=True)
    run = subprocess.run([str(folder / "deploy")], capture_output=True, text=True, check=False)
    # the example prints the error on success and refuses the model (exit 1, stderr) on failure
    found = re.search(r"(?:self_test: max abs error|failed its self test \(max abs error) ([^)\s]+)", run.stdout + run.stderr)
    assert found and run.returncode == (0 if float(found.group(1)) < 1e-5 else 1), (run.stdout, run.stderr)
    return float(found.group(1))


@pytest.mark.cpp
def test_self_test_uses_the_aidax_pair(rtneural_src, tmp_path):
    path = aidax_file(tmp_path, "GRU", 2, 0, False, frames=60)  # knob model, [frames, inputs] layout
    assert self_test_error(path, rtneural_src, tmp_path) <= TOLERANCE
    document = json.loads(path.read_text())
    document["output_batch"][30][0] += 0.5  # a file whose pair the model does not reproduce
    path.write_text(json.dumps(document))
    assert self_test_error(path, rtneural_src, tmp_path) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.cpp
@pytest.mark.parametrize("unit,input_size,skip,layout_1d", [("GRU", 1, 1, True), ("LSTM", 2, 0, False)])
def test_check_json_with_rtneural_replays_the_pair_in_the_real_rtneural(rtneural_src, tmp_path, unit, input_size, skip, layout_1d):
    path = aidax_file(tmp_path, unit, input_size, skip, layout_1d, frames=60)
    result = CliRunner().invoke(app, ["check", str(path), "--rtneural", str(rtneural_src), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    labels = [c["label"] for c in json.loads((tmp_path / "r.json").read_text())["comparisons"]]
    assert [label for label in labels if label.startswith("RTNeural")], labels
    assert ("RTNeural dynamic" in labels) == (not skip)  # RTNeural's run-time parser would drop the skip: left out
