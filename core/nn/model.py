"""A compact 3D U-Net with a phase head and a particle-instance head.

The network maps a normalised greyscale patch ``(B, 1, D, H, W)`` to
``(B, 5, D, H, W)`` logits:

- channels 0..2: phase logits (0 pore, 1 CBD, 2 NMC; :mod:`core.codes`);
- channel 3: particle-centre cue, trained as the distance to the particle's
  own surface divided by the particle's largest such distance (0 at the
  surface, 1 at the centre; cracks inside a particle are filled first, so a
  crack is not a surface) -- read through a sigmoid;
- channel 4: boundary logit: NMC voxels that touch another particle.

Spatial sizes must be multiples of :attr:`UNet3D.multiple`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

N_PHASES = 3
CH_CENTRE = 3
CH_BOUNDARY = 4
N_OUT = 5


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`UNet3D`.

    Attributes
    ----------
    base : int
        Channels of the first level; each level down doubles them.
    levels : int
        Resolution levels (``levels - 1`` poolings by 2).
    groups : int
        GroupNorm groups.
    """

    base: int = 8
    levels: int = 4
    groups: int = 4

    def __post_init__(self):
        if self.base < 1 or self.levels < 2 or self.groups < 1 or self.base % self.groups:
            raise ValueError(f"invalid model configuration {self}: need base >= 1 divisible by groups, "
                             "levels >= 2")

    def to_dict(self) -> dict:
        return asdict(self)


def _block(cin: int, cout: int, groups: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.SiLU(inplace=True),
        nn.Conv3d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.SiLU(inplace=True),
    )


class UNet3D(nn.Module):
    """3D U-Net (see module docstring)."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config = config or ModelConfig()
        ch = [config.base * 2**i for i in range(config.levels)]
        self.down = nn.ModuleList()
        cin = 1
        for c in ch:
            self.down.append(_block(cin, c, config.groups))
            cin = c
        self.pool = nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for c_hi, c_lo in zip(reversed(ch[:-1]), reversed(ch[1:])):
            self.up.append(nn.ConvTranspose3d(c_lo, c_hi, 2, stride=2))
            self.dec.append(_block(2 * c_hi, c_hi, config.groups))
        self.head = nn.Conv3d(ch[0], N_OUT, 1)

    @property
    def multiple(self) -> int:
        """Spatial sizes must be multiples of this."""
        return 2 ** (self.config.levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
