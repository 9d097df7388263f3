"""Issue 17, point 7: outside text cannot become code in a generated C++ header.

Two properties, both over arbitrary names (newlines, ``*/``, quotes, backslashes, control characters,
``#``, trigraphs, non-ASCII):

- token equality (fast, many examples): with every comment and every string literal's content blanked
  by an independent little C++ lexer, the header for a hostile file name is token for token the header
  for a plain one -- outside text lives only inside comments and literals;
- compilation (a few examples, one g++ -fsyntax-only each): the hostile headers compile against the
  real RTNeural and their embedded string literal decodes back to the exact bytes of the name.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED, unavailable
from toolchain.cpp.cpp_text import comment, identifier, string_literal
from toolchain.cpp.header import generate_header
from toolchain.cpp.static_program import StaticModel, _part_source
from toolchain.errors import InputError
from toolchain.layers import Dense, Model

#: Pieces that have broken generated code elsewhere, mixed with arbitrary text (surrogates excluded:
#: a file name read by Python's os functions never holds an unpaired one after UTF-8 decoding).
PIECES = st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\\", '"', "'", "?", "*", "/", "#", "{", "}", ";", " ",
                          "??/", "*/", "/*", "\n#error injected\n", "\\\n", "é", "€", "\u2028"])
HOSTILE = st.lists(st.one_of(PIECES, st.text(st.characters(blacklist_categories=("Cs",)), max_size=3)),
                   max_size=8).map("".join)


def _model() -> Model:
    rng = np.random.default_rng(3)  # 3 -> 5: odd sizes
    return Model(3, [Dense(rng.standard_normal((5, 3)).astype(np.float32), np.zeros(5, np.float32), "tanh")])


def code_tokens(text: str) -> str:
    """``text`` with comments removed and every string/char literal's content replaced by ``_``:
    an independent reading of C++'s lexical rules (line splices, // and /* */ comments, escapes)."""
    text = text.replace("\\\n", "")  # translation phase 2: a backslash-newline splices lines
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            assert end >= 0, "unterminated block comment"
            i = end + 2
        elif text[i] in "\"'":
            quote, j = text[i], i + 1
            while text[j] != quote:
                assert text[j] != "\n", "newline inside a literal"
                j += 2 if text[j] == "\\" else 1
            out.append(quote + "_" + quote)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def decode_literal(literal: str) -> bytes:
    """The bytes a C++ narrow string literal made of printable ASCII and octal escapes stands for."""
    assert literal[0] == literal[-1] == '"'
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == "\\":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            out += body[i].encode()
            i += 1
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_string_literal_round_trips_and_is_comment_safe(text):
    literal = string_literal(text)
    assert decode_literal(literal) == text.encode("utf-8", "surrogatepass")
    assert all(" " <= c <= "~" for c in literal) and "*" not in literal and "?" not in literal


@settings(max_examples=300, deadline=None)
@given(HOSTILE, st.integers(5, 300))
def test_comment_is_inert_and_capped(text, limit):
    safe = comment(text, limit)
    assert all(" " <= c <= "~" for c in safe), "only printable ASCII in a comment"
    assert "*/" not in safe and "/*" not in safe and "??" not in safe and not safe.endswith("\\")
    assert len(safe) <= max(limit, 5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE, HOSTILE)
def test_hostile_file_names_change_no_code_token(source, header):
    model = _model()
    plain = generate_header(model, name="M", namespace="m", source="model.json", header="model.h")
    hostile = generate_header(model, name="M", namespace="m", source=source, header=header)
    assert code_tokens(hostile) == code_tokens(plain)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_file_names_change_no_code_token_in_graph_and_in_skip_headers(source):
    """The graph form puts ``{source}`` in a ``/** */`` doc comment: ``*/`` in a name must not close it."""
    from tests.cpp.graph_cases import in_skip, residual_dense

    for build in (residual_dense, in_skip):
        model = build(np.random.default_rng(5))
        plain = generate_header(model, name="M", namespace="m", source="model.json", header="model.h")
        hostile = generate_header(model, name="M", namespace="m", source=source, header=source + ".h")
        assert code_tokens(hostile) == code_tokens(plain)


@settings(max_examples=100, deadline=None)
@given(HOSTILE)
def test_hostile_static_keys_change_no_code_token(key):
    models = [StaticModel(key=key, model=_model())]
    assert code_tokens(_part_source(0, [0], models)) == code_tokens(_part_source(0, [0], [StaticModel(key="k", model=_model())]))


@pytest.mark.parametrize("name", ["a\nb", "x*/y", "int", "std", "__x", "_Upper", "a b", "#define", "", "a" * 256, "é"])
def test_identifiers_are_validated_not_rewritten(name):
    with pytest.raises(InputError) as raised:
        identifier(name, "--name")
    assert "\n" not in raised.value.line() and len(raised.value.line()) < 200


def _compiler_and_rtneural() -> tuple[str, Path]:
    rtneural = Path(os.environ.get("RTNEURAL_SRC") or SHARED / "rtneural-cpp")
    compiler = os.environ.get("CXX", "g++").split()[0]
    if not (rtneural / "RTNeural" / "RTNeural.h").is_file() or shutil.which(compiler) is None:
        unavailable(f"needs RTNeural at {rtneural} (RTNEURAL_SRC) and a C++ compiler")
    return compiler, rtneural


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(HOSTILE, min_size=3, max_size=3))
def test_hostile_headers_compile_and_keep_the_name(tmp_path, names):
    """Three headers with hostile source names (plus the issue's own probe) in one translation unit,
    one g++ -fsyntax-only; a static_assert proves the path literal decodes to the name's bytes."""
    compiler, rtneural = _compiler_and_rtneural()
    names = names + ["m\n#error injected\n.json"]
    unit = []
    for index, name in enumerate(names):
        text = generate_header(_model(), name="M", namespace=f"m{index}", source=name, header=name + ".h")
        (tmp_path / f"h{index}.h").write_text(text)
        expected = name.encode("utf-8", "surrogatepass")
        unit.append(f'#include "h{index}.h"\n'
                    f"static_assert(sizeof({string_literal(name)}) == {len(expected) + 1}, \"length\");\n")
        assert string_literal(name) in text  # the load() example quotes the exact path
    (tmp_path / "unit.cpp").write_text("".join(unit) + "int main() { return 0; }\n")
    result = subprocess.run([compiler, "-std=c++17", "-fsyntax-only", "-trigraphs", "-DRTNEURAL_DEFAULT_ALIGNMENT=16",
                             f"-I{rtneural}", f"-I{rtneural / 'modules' / 'json'}", str(tmp_path / "unit.cpp")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
