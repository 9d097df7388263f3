"""One converter module per ONNX op family, registered by op type (see :mod:`registry`).

Importing this package registers every converter. The graph machinery they share: :mod:`folding`
(constant folding, tensor kinds), :mod:`axes` (axis roles), :mod:`context` (what a converter sees),
:mod:`walk` (the DAG from input to output; :mod:`merges` routes branches).
"""
from toolchain.converters import activations, causal_trim, conv, gemm, gru, lstm, merges, shape_ops  # noqa: F401  (registration)
from toolchain.converters.registry import REGISTRY, lookup  # noqa: F401  (the package's interface)
