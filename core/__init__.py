"""Core science of the cathode-detachment tool.

Pure functions on numpy arrays with axes ``(z, y, x)`` and voxel ``spacing`` in
micrometres.  Nothing in this package imports streamlit.

Phase codes are fixed everywhere: ``0 = pore``, ``1 = CBD`` (carbon-binder
domain), ``2 = NMC`` (active particles).  See :mod:`core.codes`.
"""

__version__ = "0.1.0"

from .codes import CBD, NMC, PHASE_CODES, PHASE_NAMES, PORE  # noqa: F401
