"""Every corpus case through every command that reads a file of its kind (tests/hostile/matrix.py):
one line ``error: FILE: WHERE: reason`` on stderr, exit 2, no traceback, nothing written anywhere;
``--debug`` shows the traceback. docs/ERRORS.md is the same table for people."""
from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tests.conftest import unavailable

from tests.fixtures import refusals
from tests.hostile import corpus_checkpoints
from tests.hostile.matrix import INVOCATIONS, KELLY_MODELS, build_bad_file, command_line, expected_lines, quant_accepted_cases
from tests.hostile.support import tree
from toolchain.cli import app

#: Commands whose module is not in toolchain/commands COMMANDS yet are skipped with that reason.
REGISTERED = {c.name or c.callback.__name__ for c in app.registered_commands}


def invoke(arguments, debug: bool = False):
    env = {"KELLY_TC_DEBUG": "1" if debug else "0"}
    return CliRunner().invoke(app, [str(a) for a in arguments], env=env)


@pytest.fixture
def trained_if_needed(request):
    invocation = request.node.callspec.params["invocation"]
    return request.getfixturevalue("trained") if invocation.kind == "checkpoint" else None


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=lambda i: i.id)
def test_bad_input_gives_one_error_line_exit_2_and_writes_nothing(invocation, good, tmp_path, trained_if_needed):
    if invocation.command not in REGISTERED:
        unavailable(f"kelly-tc {invocation.command} is not registered in toolchain/commands COMMANDS yet")
    (tmp_path / "input").mkdir()
    bad = build_bad_file(invocation, tmp_path / "input", trained_if_needed)
    out = tmp_path / "out"
    out.mkdir()
    before, good_before = tree(tmp_path), tree(good.folder)
    result = invoke(command_line(invocation, bad, good, out))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, result.stderr + result.stdout
    assert len(lines) == len(expected_lines(invocation, bad)), result.stderr
    for line, pattern in zip(lines, expected_lines(invocation, bad)):
        assert re.fullmatch(pattern, line), f"\n{line}\n{pattern}"
    assert "Traceback" not in result.stderr + result.stdout
    assert tree(tmp_path) == before and tree(good.folder) == good_before  # no output, no temporary file
    if invocation.kind == "checkpoint":
        assert not (tmp_path / "input" / corpus_checkpoints.EXPLOIT_MARKER).exists()


def _first_per_command():
    seen, chosen = set(), []
    for invocation in INVOCATIONS:
        if invocation.command not in seen and invocation.kind != "checkpoint":
            seen.add(invocation.command)
            chosen.append(invocation)
    return chosen


@pytest.mark.parametrize("invocation", _first_per_command(), ids=lambda i: i.id)
def test_debug_shows_the_traceback_then_the_same_line(invocation, good, tmp_path):
    if invocation.command not in REGISTERED:
        unavailable(f"kelly-tc {invocation.command} is not registered in toolchain/commands COMMANDS yet")
    (tmp_path / "input").mkdir()
    bad = build_bad_file(invocation, tmp_path / "input", None)
    result = invoke(command_line(invocation, bad, good, tmp_path), debug=True)
    assert result.exit_code == 2
    if invocation.command == "validate":  # validate judges files without raising: its lines are verdicts
        assert result.stderr.count("error: ") == len(KELLY_MODELS)
        return
    assert result.stderr.startswith("Traceback (most recent call last)"), result.stderr
    assert re.fullmatch(expected_lines(invocation, bad)[0], result.stderr.splitlines()[-1])


@pytest.mark.parametrize("case", quant_accepted_cases())
@pytest.mark.parametrize("command", ["quantize", "prune"])
def test_quantize_and_prune_accept_valid_onnx_that_only_convert_refuses(command, case, tmp_path):
    """A bidirectional LSTM or a skip connection is valid ONNX: the compression passes write it (convert
    and check refuse it later, naming the node). What matters here: never an internal error."""
    import onnx

    bad = getattr(refusals, case)(tmp_path)
    options = ["--int8", "--no-compare"] if command == "quantize" else ["--no-latency"]
    result = invoke([command, bad, *options, "-o", tmp_path / "out.onnx"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    onnx.checker.check_model(onnx.load(str(tmp_path / "out.onnx")))
