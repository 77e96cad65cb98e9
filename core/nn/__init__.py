"""Learned phase segmentation and particle identification (PyTorch).

Kept apart: the architecture (``model``), tiled inference that works with any
network (:mod:`core.nn.tiling`, its tile layout in :mod:`core.nn.tile_plan`),
the grey-value normalisation shared by training and inference
(:mod:`core.nn.intensity`), the device and thread count (:mod:`core.nn.device`),
inference with the shipped weights (:mod:`core.nn.infer`) and training
(:mod:`core.nn.data`, :mod:`core.nn.train`).  Importing this package imports
nothing heavy; ``params``, ``intensity`` and ``tile_plan`` import no torch, the
other modules do.
"""
