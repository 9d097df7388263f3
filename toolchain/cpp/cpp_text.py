"""The only three ways text from outside reaches generated C++ (issue 17, point 7).

A header is code: a file name, a model key or a node name pasted raw into it could close a comment,
start a preprocessor line (a newline then ``#error``) or end a string literal. So every emitter puts
outside text through exactly one of these:

- :func:`identifier` -- a C++ name (type, namespace, member): validated, never rewritten; a bad one
  is an :class:`InputError` naming the option or field it came from;
- :func:`string_literal` -- any text as a quoted C++ string literal: only printable ASCII other than
  ``"``, ``\\``, ``?`` and ``*`` is kept as is, everything else becomes a 3-digit octal escape (octal,
  because ``\\x`` escapes swallow every following hex digit). Without ``*`` and ``?`` the literal is
  also inert inside a comment (no ``*/``, no trigraph), so a banner may quote it;
- :func:`comment` -- any text made safe inside a ``//`` line comment *and* a ``/* */`` block
  comment: printable ASCII only (a newline would end the comment, a trailing backslash would splice
  the next line into it), ``*/`` and ``/*`` broken up, ``??`` broken up (a trigraph ``??/`` is a
  backslash under ``-trigraphs``), and the result shortened to ``limit`` characters.

Everything else in a header (numbers, sizes, fixed template text) is produced by the emitters
themselves and contains no outside text.
"""
from __future__ import annotations

import re

from toolchain.errors import InputError

#: C++ keywords and the names a generated header itself uses at namespace scope.
CPP_RESERVED = frozenset("""alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
decltype default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch template this
thread_local throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
RTNeural detail std""".split())

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


def identifier(text: str, what: str, allow_scope: bool = False) -> str:
    """``text`` if it is a usable C++ identifier (``a::b`` for a namespace when ``allow_scope``).

    Refused: anything but ``[A-Za-z_][A-Za-z0-9_]*``, keywords, names with ``__`` or starting with
    ``_`` and a capital (reserved to the implementation), names over 255 characters."""
    parts = text.split("::") if allow_scope else [text]
    for part in parts:
        if (not _IDENTIFIER.fullmatch(part) or part in CPP_RESERVED or "__" in part
                or re.match(r"_[A-Z]", part)):
            raise InputError(f"{comment(repr(text), 80)} is not a usable C++ identifier", where=what)
    return text


def _octal(character: str) -> str:
    return "".join(f"\\{byte:03o}" for byte in character.encode("utf-8", "surrogatepass"))


def string_literal(text: str) -> str:
    """``text`` as a C++ narrow string literal (UTF-8 bytes), quotes included."""
    out = []
    for character in text:
        if character in '"\\?*' or not (" " <= character <= "~"):
            out.append(_octal(character))
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def comment(text: str, limit: int = 200) -> str:
    """``text`` made inert inside a C++ comment, at most ``limit`` characters (elided in the middle)."""
    out = []
    for character in str(text):
        if character == "\\":
            out.append("\\x5c")  # never a backslash: one at the end of a line splices the next line in
        elif " " <= character <= "~":
            out.append(character)
        else:
            out.append(repr(character)[1:-1] if character.isascii() else f"\\u{ord(character):04x}"
                       if ord(character) <= 0xFFFF else f"\\U{ord(character):08x}")
    result = "".join(out).replace("*/", "*_/").replace("/*", "/_*")
    while "??" in result:  # "???" -> "?_??" after one pass
        result = result.replace("??", "?_?")
    if len(result) > limit:
        keep = max(limit - 3, 2)
        result = result[: keep // 2] + "..." + result[len(result) - (keep - keep // 2):]
    return result
