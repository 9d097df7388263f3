"""The five Kelly models: one spec table (``spec``), their PyTorch modules (``models``), the datasets
they learn from (``datasets``) and the training loop (``training``).

Only ``spec``, ``chords`` and ``config`` are importable without PyTorch; ``models`` and ``training``
import torch, and the dataset sources import librosa / pretty_midi / music21 inside the functions that
need them (the ``audio`` and ``synth`` extras).
"""
