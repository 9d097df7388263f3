"""docs/ERRORS.md lists exactly the cases the corpus tests run, with their messages."""
from __future__ import annotations

from tests.hostile.errors_table import BEGIN, DOC, END, table


def test_the_errors_document_holds_the_generated_corpus_table():
    text = DOC.read_text(encoding="utf-8")
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    assert current == table(), "docs/ERRORS.md is stale: run python -m tests.hostile.errors_table"
