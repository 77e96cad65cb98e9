"""Learned phase segmentation and particle identification (PyTorch).

Kept apart: the architecture (``model``), tiled inference that works with any
network (:mod:`core.nn.tiling`), weights and training.  Importing this package
imports nothing heavy; its modules import :mod:`torch`.
"""
