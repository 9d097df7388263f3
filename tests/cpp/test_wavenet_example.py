"""The README's worked example runs as written: PyTorch WaveNet -> ONNX -> ``kelly-tc convert`` (a graph
file) -> ``kelly-tc cpp`` -> a compiled plugin whose output is the PyTorch model's, sample for sample."""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, require_modules
from tests.cpp.conftest import TOLERANCE
from toolchain.cli import app

HEADING = "### Worked example: a WaveNet pedal from PyTorch to a plugin header"


def readme_commands() -> list[str]:
    """The lines of the first ```bash block after the worked example's heading."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(HEADING):]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()


def load_pedal_module():
    spec = importlib.util.spec_from_file_location("pedal_example", REPO / "examples" / "wavenet" / "pedal.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.cpp
def test_the_worked_example_runs_as_written_and_the_plugin_computes_the_pytorch_model(rtneural_src, tmp_path):
    require_modules("torch", "onnxscript")
    import torch

    (tmp_path / "examples").symlink_to(REPO / "examples")  # the commands are written from the repository root
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    commands = readme_commands()
    assert [c.split()[0] for c in commands] == ["python", "kelly-tc", "kelly-tc", "g++", "./plugin"]
    outputs = {}
    for line in commands:
        words = shlex.split(line.replace('"$RTNEURAL_SRC"', shlex.quote(str(rtneural_src))))
        if words[0] == "kelly-tc":  # this tree's CLI, in process
            cwd = os.getcwd()
            os.chdir(tmp_path)
            try:
                result = CliRunner().invoke(app, words[1:])
            finally:
                os.chdir(cwd)
            assert result.exit_code == 0, f"{line}\n{result.output}"
            outputs[words[1]] = result.output
        else:
            words[0] = sys.executable if words[0] == "python" else words[0]
            result = subprocess.run(words, cwd=tmp_path, env=environment, capture_output=True, text=True)
            assert result.returncode == 0, f"{line}\n{result.stderr[-2000:]}"
            outputs[words[0]] = result.stdout
    assert "passed: worst error vs the float64 run" in outputs["convert"]  # check's verdict line since the float64 judgment
    assert "pedal::Pedal (a graph of 65 nodes: 33 compile-time layers and 32 merges" in outputs["cpp"]

    rows = np.array([[float(value) for value in line.split()] for line in outputs["./plugin"].splitlines()])
    assert rows.shape == (192, 3) and np.array_equal(rows[:, 0], np.arange(192))
    with torch.no_grad():
        expected = load_pedal_module().build()(torch.tensor(rows[:, 1], dtype=torch.float32).view(1, 1, -1)).numpy().ravel()
    assert np.max(np.abs(expected)) > 0.05  # a signal, not silence
    np.testing.assert_allclose(rows[:, 2], expected, rtol=0, atol=TOLERANCE)
