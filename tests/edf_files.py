"""Writing ESRF ``.edf`` frames for the tests (``{ key = value ; }`` headers padded to 512 bytes, then the
voxels), independent of :mod:`core.io.edf`."""

from __future__ import annotations

import bz2
import gzip
import zlib

import numpy as np

_NAMES = {"uint8": "UnsignedByte", "uint16": "UnsignedShort", "int32": "SignedInteger", "float32": "FloatValue",
          "float64": "DoubleValue"}


#: Compression -> (the header's name for it, as fabio writes it, and the compressor).
COMPRESSIONS = {"gzip": ("GzipCompression", gzip.compress), "bz2": ("BzipCompression", bz2.compress),
                "zlib": ("Z_Compression", zlib.compress)}


def edf_frame(data: np.ndarray, extra: str = "", *, order: str = "<", compress: str | None = None) -> bytes:
    """One EDF frame of ``data`` (2D or 3D) in byte ``order``; ``compress``: a key of :data:`COMPRESSIONS`."""
    data = np.asarray(data)
    dims = "".join(f"Dim_{i + 1} = {n} ;\n" for i, n in enumerate(data.shape[::-1]))
    body = data.astype(data.dtype.newbyteorder(order)).tobytes()
    if compress:
        label, squeeze = COMPRESSIONS[compress]
        body = squeeze(body)
        extra = f"Compression = {label} ;\n" + extra
    text = (f"{{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\n"
            f"ByteOrder = {'LowByteFirst' if order == '<' else 'HighByteFirst'} ;\n"
            f"DataType = {_NAMES[data.dtype.name]} ;\n{dims}Size = {len(body)} ;\n{extra}")
    pad = -(len(text) + 2) % 512
    return (text + " " * pad + "}\n").encode("latin-1") + body
