"""kelly-tc's Python API: the functions the ``kelly-tc`` commands call, for a notebook or a script.

    import kelly_tc

    model = kelly_tc.from_torch(trained, torch.zeros(1, 32, 64), "model.json")  # export, convert, verify
    kelly_tc.cpp("model.json", "model.h", embed_weights=True)

Every function raises :class:`kelly_tc.KellyError` (``InputError`` for bad input, ``CheckFailed`` for a
check or budget that failed) with the same one-line message the command line prints; every file is
written atomically. The commands in ``toolchain/commands/`` parse options, call these and render.
"""
from __future__ import annotations

from kelly_tc.api import bench, check, convert, cpp, prune, quantize, run
from kelly_tc.from_torch import from_torch
from toolchain.errors import CheckFailed, InputError, KellyError, UnsupportedError
from toolchain.layers import Model

__all__ = ["convert", "check", "run", "bench", "quantize", "prune", "cpp", "from_torch",
           "Model", "KellyError", "InputError", "UnsupportedError", "CheckFailed"]
