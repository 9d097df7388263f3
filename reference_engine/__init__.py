"""A Numba-compiled streaming engine that runs RTNeural JSON models exactly as RTNeural does."""
