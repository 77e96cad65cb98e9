"""Fixed phase codes used by every module.

``0 = pore``, ``1 = CBD`` (carbon-binder domain), ``2 = NMC`` (active material).
"""

from __future__ import annotations

PORE: int = 0
CBD: int = 1
NMC: int = 2

#: phase name -> code
PHASE_CODES: dict[str, int] = {"pore": PORE, "cbd": CBD, "nmc": NMC}
#: code -> phase name
PHASE_NAMES: dict[int, str] = {v: k for k, v in PHASE_CODES.items()}
