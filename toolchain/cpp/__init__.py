"""kelly-tc against the real RTNeural (C++): build harnesses, run models, generate deployable headers.

- ``build``: find an RTNeural checkout, compile programs against it once into a cache folder;
- ``runner``: ``run_rtneural`` (RTNeural's dynamic API on frames);
- ``header``: ``kelly-tc cpp`` -- a header with the compile-time ``ModelT`` type, a loader and ``self_test``;
- ``static_program``: programs around generated headers (several models in one translation unit);
- ``check``: ``rtneural_check`` (outputs per API) and ``time_rtneural`` (C++ per-frame timing);
- ``reference_pair``: the reference input/output pair a model file carries.
"""
