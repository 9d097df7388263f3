"""The real ``kelly-tc`` in a fresh process, under a 2 GiB address-space limit: no traceback reaches
stderr, ``--debug`` shows one, and files that declare gigabytes (hidden_size 10^9, Expand/Tile bombs,
a conv1d history of 4 GiB) are refused from their declared sizes -- an attempt to allocate them would
die with MemoryError (exit 3) under the limit instead of giving the clean line."""
from __future__ import annotations

import re
import resource

import pytest

from tests.hostile.matrix import INVOCATIONS, build_bad_file, command_line, expected_lines
from tests.hostile.support import kelly_tc_command, kelly_tc_environment, tree

#: Address-space limit of the child: the CLI with numba, onnxruntime and torch imported peaks near 1.5 GiB.
MEMORY_LIMIT = 2 << 30

BY_ID = {invocation.id: invocation for invocation in INVOCATIONS}
#: Declared sizes far above the limit, across the commands that would allocate them.
ABSURD = ("convert-lstm_absurd_declared_weights", "quantize-constant_of_shape_bomb", "check-input_absurd_time_length",
          "convert-conv_dilation_bomb", "bench-json_conv1d_history_bomb")
#: Ordinary bad input: a JSON model, a training config.
ORDINARY = ("run-json_nan_literal", "train-config_nan_learning_rate")


def run_limited(arguments, debug: bool = False):
    import subprocess

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    debug_flag = ["--debug"] if debug else []
    return subprocess.run([*kelly_tc_command(), *debug_flag, *map(str, arguments)], env=kelly_tc_environment(),
                          capture_output=True, text=True, timeout=120, preexec_fn=limit_memory)


@pytest.mark.parametrize("invocation_id", ABSURD + ORDINARY)
def test_the_real_cli_prints_one_line_and_no_traceback(invocation_id, good, tmp_path):
    invocation = BY_ID[invocation_id]
    (tmp_path / "input").mkdir()
    bad = build_bad_file(invocation, tmp_path / "input", None)
    (tmp_path / "out").mkdir()
    before = tree(tmp_path)
    result = run_limited(command_line(invocation, bad, good, tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    (pattern,) = expected_lines(invocation, bad)
    assert re.fullmatch(pattern + "\n", result.stderr), result.stderr
    assert tree(tmp_path) == before


def test_the_debug_flag_prints_the_traceback_then_the_line(good, tmp_path):
    invocation = BY_ID["convert-expand_bomb"]
    bad = build_bad_file(invocation, tmp_path, None)
    result = run_limited(command_line(invocation, bad, good, tmp_path), debug=True)
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last)")
    assert "toolchain.errors.InputError" in result.stderr
    (pattern,) = expected_lines(invocation, bad)
    assert re.fullmatch(pattern, result.stderr.splitlines()[-1])
