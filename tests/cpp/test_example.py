"""The README's "Deploying in C++" example compiles with the documented command and runs correctly."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.cpp.conftest import TOLERANCE, require_backend
from toolchain.cli import app
from toolchain.cpp.build import eigen_include

EXAMPLE = REPO / "examples" / "cpp" / "deploy.cpp"


def readme_compile_command(rtneural_src) -> list[str]:
    """The README's g++ line ("Deploying in C++"), as written, with $RTNEURAL_SRC and the example's path
    filled in: the test compiles exactly what a user is told to type."""
    line = next(line for line in (REPO / "README.md").read_text().splitlines()
                if line.startswith("g++ ") and "examples/cpp/deploy.cpp" in line)
    command = line.split(" && ")[0].replace('"$RTNEURAL_SRC"', shlex.quote(str(rtneural_src)))
    return [str(EXAMPLE) if part == "examples/cpp/deploy.cpp" else part for part in shlex.split(command)]


@pytest.mark.cpp
def test_the_readme_compile_line_builds_the_example_without_rtneurals_warning(layer_kind_models, rtneural_src, tmp_path):
    """-I names the folder that CONTAINS RTNeural/ (the checkout), and the alignment is defined: no #warning."""
    case = next(c for c in layer_kind_models if c.name == "mixed_stack")
    result = CliRunner().invoke(app, ["cpp", str(case.json_path), "-o", str(tmp_path / "model.h"), "--name", "Model",
                                      "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    command = readme_compile_command(rtneural_src)
    assert "-DRTNEURAL_DEFAULT_ALIGNMENT=16" in command and command[command.index("-I") + 1] == str(rtneural_src)
    assert (rtneural_src / "RTNeural" / "RTNeural.h").is_file()  # the folder given to -I holds RTNeural/
    compiled = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    assert "warning" not in compiled.stderr, compiled.stderr[-2000:]
    run = subprocess.run([str(tmp_path / "deploy")], capture_output=True, text=True, check=True)
    assert float(re.search(r"self_test: max abs error (\S+)", run.stdout).group(1)) <= TOLERANCE


@pytest.mark.cpp
def test_the_deploy_example_compiles_passes_its_self_test_and_streams_like_the_engine(layer_kind_models, rtneural_src, tmp_path):
    from reference_engine.model import load_engine

    case = next(c for c in layer_kind_models if c.name == "mixed_stack")
    shutil.copy(EXAMPLE, tmp_path / "deploy.cpp")
    # The commands of the example's header comment, as a user types them.
    result = CliRunner().invoke(app, ["cpp", str(case.json_path), "-o", str(tmp_path / "model.h"), "--name", "Model",
                                      "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    subprocess.run(["g++", "-std=c++17", "-O2", "-DRTNEURAL_DEFAULT_ALIGNMENT=16", "-I", str(rtneural_src), "deploy.cpp",
                    "-o", "deploy"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "deploy")], capture_output=True, text=True, check=True)

    error = float(re.search(r"self_test: max abs error (\S+)", run.stdout).group(1))
    assert error <= TOLERANCE
    printed = [float(value) for value in re.findall(r"frame \d: output\[0\] = (\S+)", run.stdout)]
    frames = np.array([[0.25 * (t - i % 3) for i in range(5)] for t in range(4)], np.float32)
    engine = load_engine(case.json_path)
    engine.reset()
    np.testing.assert_allclose(printed, engine.run(frames)[:, 0], rtol=0, atol=TOLERANCE)  # printed with 6 decimals


@pytest.mark.cpp
def test_a_kelly_sized_header_lifts_eigens_fixed_size_limit_itself(kelly_exported_models, rtneural_src, tmp_path):
    """EmotionRecognizer's LSTM holds a 1.2 MB fixed-size Eigen matrix (Eigen's default limit: 128 KiB):
    the header, included before Eigen as in the example, lifts the limit and the example runs."""
    require_backend("eigen", rtneural_src)  # skips (fails under CI=true) without Eigen
    case = next(c for c in kelly_exported_models if c.name == "kelly_EmotionRecognizer")
    shutil.copy(EXAMPLE, tmp_path / "deploy.cpp")
    result = CliRunner().invoke(app, ["cpp", str(case.json_path), "-o", str(tmp_path / "model.h"), "--name", "Model",
                                      "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    subprocess.run(["g++", "-std=c++17", "-O1", "-DRTNEURAL_USE_EIGEN=1", "-I", str(eigen_include(rtneural_src)),
                    "-I", str(rtneural_src), "deploy.cpp", "-o", "deploy"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "deploy")], capture_output=True, text=True, check=True)
    assert float(re.search(r"self_test: max abs error (\S+)", run.stdout).group(1)) <= TOLERANCE


@pytest.mark.cpp
def test_a_header_included_after_eigen_stops_the_build_saying_what_to_do(kelly_exported_models, rtneural_src, tmp_path):
    require_backend("eigen", rtneural_src)  # skips (fails under CI=true) without Eigen
    case = next(c for c in kelly_exported_models if c.name == "kelly_EmotionRecognizer")
    header = tmp_path / "model.h"
    assert CliRunner().invoke(app, ["cpp", str(case.json_path), "-o", str(header)]).exit_code == 0
    (tmp_path / "late.cpp").write_text('#include <Eigen/Core>\n#include "model.h"\n')
    compiled = subprocess.run(["g++", "-std=c++17", "-E", "-DRTNEURAL_USE_EIGEN=1", "-I", str(eigen_include(rtneural_src)),
                               "-I", str(rtneural_src), "late.cpp", "-o", "/dev/null"], cwd=tmp_path, capture_output=True, text=True)
    assert compiled.returncode != 0
    assert "this model needs EIGEN_STACK_ALLOCATION_LIMIT 0 (or >= 1219328): define it before Eigen is first included" in compiled.stderr


@pytest.mark.cpp
def test_the_deploy_example_refuses_a_model_without_a_reference_pair(rtneural_testdata, rtneural_src, tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "deploy.cpp")
    result = CliRunner().invoke(app, ["cpp", str(rtneural_testdata / "models" / "lstm.json"), "-o", str(tmp_path / "model.h"),
                                      "--name", "Model", "--namespace", "my_plugin", "--embed-weights"])
    assert result.exit_code == 0, result.output
    subprocess.run(["g++", "-std=c++17", "-O1", "-I", str(rtneural_src), "deploy.cpp", "-o", "deploy"],
                   cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run([str(tmp_path / "deploy")], capture_output=True, text=True)
    assert run.returncode == 1 and "model failed its self test (max abs error nan)" in run.stderr
