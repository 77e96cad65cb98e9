"""Writing Avizo / Amira ``.am`` files for the tests: the ``HxByteRLE`` encoder (independent of
:mod:`core.io.amira`'s decoder) and a label field with named materials."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def rle_encode(data: np.ndarray, literal_from: int = 3) -> bytes:
    """HxByteRLE of ``data``'s bytes: runs of ``literal_from`` or more equal bytes as a repeat (count < 128, then the
    byte), the bytes between them as literals (0x80 | count, then the bytes)."""
    flat = np.ascontiguousarray(data, np.uint8).ravel().tolist()
    out, lit, i = bytearray(), [], 0

    def flush():
        while lit:
            part = lit[:127]
            out.extend([0x80 | len(part), *part])
            del lit[:127]

    while i < len(flat):
        j = i
        while j < len(flat) and flat[j] == flat[i] and j - i < 127:
            j += 1
        if j - i >= literal_from:
            flush()
            out.extend([j - i, flat[i]])
        else:
            lit.extend(flat[i:j])
        i = j
    flush()
    return bytes(out)



def write_label_field(path: Path, labels: np.ndarray, materials: dict[int, str], spacing_um: float) -> Path:
    """``labels`` (z, y, x) uint8 as an Avizo label field (run lengths), its materials named with explicit ``Id``
    and a ``BoundingBox`` of voxel ``spacing_um`` (no unit stated, as Avizo writes by default)."""
    nz, ny, nx = labels.shape
    enc = rle_encode(labels)
    mats = "".join(f'        "{name}" {{\n            Id {v},\n            Color 0.5 0.5 0.5\n        }}\n'
                   for v, name in materials.items())
    s = spacing_um
    head = (f"# Avizo BINARY-LITTLE-ENDIAN 2.1\n\n\ndefine Lattice {nx} {ny} {nz}\n\nParameters {{\n"
            f"    Materials {{\n        Exterior {{\n            Color 0 0 0\n        }}\n{mats}    }}\n"
            f'    Content "{nx}x{ny}x{nz} byte, uniform coordinates",\n'
            f"    BoundingBox 0 {s * (nx - 1)!r} 0 {s * (ny - 1)!r} 0 {s * (nz - 1)!r},\n"
            f'    CoordType "uniform"\n}}\n\nLattice {{ byte Labels }} @1(HxByteRLE,{len(enc)})\n\n'
            "# Data section follows\n@1\n")
    path.write_bytes(head.encode("latin-1") + enc + b"\n")
    return path
