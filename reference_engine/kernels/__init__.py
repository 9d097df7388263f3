"""One Numba kernel module per RTNeural layer kind (dense, lstm, gru, conv1d, batchnorm, prelu, activation).

Every kernel is a plain ``@njit`` function over preallocated float32 arrays: inputs, weights, state
and outputs are passed in, nothing is allocated, nothing is global. Each module also holds the
``pack`` function that lays its layer's weights out for the kernel (see ``reference_engine/program.py``).

``JIT`` is the one place the compilation options are chosen, so every kernel is built the same way.
"""

#: Floating-point relaxations allowed in the kernels. ``reassoc`` lets LLVM vectorise the dot
#: products (a sequential float sum cannot be split into SIMD lanes otherwise) and ``contract`` lets it
#: fuse multiply-adds; together they change results by a few float32 ulps, far inside RTNeural's own
#: 1e-6 test tolerance (its Eigen/xsimd backends reassociate too). ``nnan``/``ninf`` are deliberately
#: NOT enabled: the engine must propagate NaN and Inf exactly as RTNeural's plain C++ does.
FASTMATH = frozenset({"reassoc", "contract"})

#: Options for the code that reads the engine's struct of buffers (``runner.run_frame``/``run_block``):
#: compiled once, cached on disk, no Python objects (``nopython`` is numba's default).
JIT_STRUCT = dict(cache=True, fastmath=set(FASTMATH), error_model="numpy", boundscheck=False)

#: Options for every kernel and the per-frame program: as ``JIT_STRUCT`` without numba's reference-counting
#: runtime (``_nrt=False``). Every array view a kernel makes (a layer's weights, its state, a scratch row)
#: otherwise costs an atomic increment and decrement of the buffer's reference count: measured with perf,
#: a quarter of a small per-sample model's frame. Nothing here allocates or returns an array, and the
#: buffers are kept alive by the engine that calls in, so the counts have nothing to protect.
JIT = dict(JIT_STRUCT, _nrt=False)

from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402


@dataclass
class Packed:
    """What a kernel module's ``pack(layer)`` hands to the program builder (``reference_engine/program.py``).

    ``arrays``: the weight arrays in the order and layout the kernel reads them (float32, C-contiguous);
    ``state_size``: floats of persistent state; ``cursors``: integers of persistent state (ring-buffer
    positions); ``work_size``: floats of per-frame scratch beyond the input/output buffers;
    ``params``: up to three integers the kernel needs (kernel size, dilation, groups, ...);
    ``int8_arrays``: int8 weight arrays (INT8 kernels), placed in the program's int8 buffer and
    listed in the table before ``arrays``.
    """

    arrays: list[np.ndarray]
    state_size: int = 0
    cursors: int = 0
    work_size: int = 0
    params: tuple[int, ...] = field(default_factory=tuple)
    int8_arrays: list[np.ndarray] = field(default_factory=list)
