"""Parameters of the model-based segmentation (no torch import: the pipeline's parameters use them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .._checks import check_int, check_number

#: The weights shipped in the repository.
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "unet3d.pt"
#: Accepted values of :attr:`ModelParams.precision`.
PRECISIONS = ("auto", "float32", "bfloat16")


@dataclass(frozen=True)
class ModelParams:
    """Settings of the model-based segmentation.

    Attributes
    ----------
    weights : str
        ``"default"`` (the shipped :data:`DEFAULT_WEIGHTS`) or a path to a
        checkpoint written by :mod:`core.nn.train`.
    tile, overlap : int
        Tile size and minimum overlap in voxels (:func:`core.nn.tiling.predict_tiled`).
    h : float
        Minimum dynamics of a particle's peak in the instance cue (0..1).
        0.3 was chosen for the v2 weights on demo seeds 3 and 4 (mean
        F1 and AP best of 0.25–0.5 over the three demo electrodes); the
        benchmark uses seeds 100–102.
    precision : {"auto", "float32", "bfloat16"}
        Arithmetic of the network's forward pass. ``"auto"`` uses bfloat16
        where the processor (or GPU) does it natively, else float32; the
        resolved value is recorded with the results. bfloat16 changed
        about 0.05 % of the phase voxels of a demo electrode.
    """

    weights: str = "default"
    tile: int = 96
    overlap: int = 16
    h: float = 0.3
    precision: str = "auto"

    def __post_init__(self):
        if not isinstance(self.weights, str) or not self.weights:
            raise TypeError(f"weights must be 'default' or a path, got {self.weights!r}")
        check_int(self.tile, "tile")
        check_int(self.overlap, "overlap")
        if not (isinstance(self.tile, int) and self.tile >= 16 and self.tile % 8 == 0):
            raise ValueError(f"tile must be a multiple of 8, at least 16, got {self.tile!r}")
        if not (isinstance(self.overlap, int) and 0 <= 2 * self.overlap <= self.tile):
            raise ValueError(f"overlap must be between 0 and tile / 2, got {self.overlap!r}")
        check_number(self.h, "h")
        if not 0 < self.h < 1:
            raise ValueError(f"h must be in (0, 1), got {self.h!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def path(self) -> Path:
        return DEFAULT_WEIGHTS if self.weights == "default" else Path(self.weights)
