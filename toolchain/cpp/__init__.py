"""kelly-tc against the real RTNeural (C++): build harnesses, run models, generate deployable headers.

- ``build``: find an RTNeural checkout, compile programs against it once into a cache folder;
- ``runner``: ``run_rtneural`` (RTNeural's dynamic API on frames);
- ``header``: ``kelly-tc cpp`` -- a header with the compile-time ``ModelT`` type, a loader and ``self_test``;
  ``layer_code`` (one emitter per layer kind), ``merge_code`` (one per merge kind) and ``graph_header``
  (graph files: a class wiring RTNeural's layers; in_skip files: the ModelT plus the skip) feed it;
- ``static_program``: programs around generated headers (many models per program, parts built in parallel);
- ``apis``: ``rtneural_check`` (outputs per API, for ``check --rtneural``) and ``time_rtneural`` (timed in C++);
- ``bench``: RTNeural's columns in ``kelly-tc bench --rtneural`` and bench/compare_runtimes.py;
- ``reference_pair``: the reference input/output pair a model file carries (``"kelly_tc": {"reference": ...}``).
"""
