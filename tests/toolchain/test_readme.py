"""The README's tables stay true to the code: every registered op and every command is documented."""
from __future__ import annotations

import re

from tests.conftest import REPO
from toolchain.commands import COMMANDS
from toolchain.converters.registry import REGISTRY
from toolchain.onnx_import import import_onnx  # noqa: F401  (importing registers every converter)

README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_every_registered_onnx_op_is_in_the_supported_op_table():
    table = _section("Supported ONNX ops")
    missing = [op for op in REGISTRY if f"`{op}`" not in table]
    assert not missing, f"ops converted but not documented in the README: {missing}"


def test_every_rtneural_layer_kind_is_in_the_supported_op_table():
    from toolchain.layers import LAYER_TYPES

    table = _section("Supported ONNX ops")
    missing = [kind for kind in LAYER_TYPES if f"`{kind}`" not in table]
    assert not missing, f"layer kinds the converter emits but the README table does not name: {missing}"


def test_every_command_is_in_the_commands_table():
    table = _section("Commands")
    missing = [name for name in COMMANDS if f"`kelly-tc {name} " not in table]
    assert not missing, f"commands not documented in the README: {missing}"


def test_the_readme_command_runner_finds_the_commands_and_its_ci_exceptions_are_real():
    """tests/readme_commands.py (run by .ci/run) runs every ```bash/```python block; the commands it leaves
    out in CI must still be in the README word for word, or the list would silently go stale."""
    from tests.readme_commands import NOT_IN_CI, blocks, commands, without_comment

    found = blocks(README)
    written = [without_comment(c) for language, code in found if language == "bash" for c in commands(code)]
    assert "kelly-tc pipeline" in written and "pytest" in written and any(lang == "python" for lang, _ in found)
    assert set(NOT_IN_CI) <= set(written), set(NOT_IN_CI) - set(written)
    assert [c for c in written if "path/to" in c or "MODEL." in c] == []  # no placeholders in a runnable block
