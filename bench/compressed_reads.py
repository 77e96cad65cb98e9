"""The chunked engine's reads of a compressed NIfTI / MRC file: box by box from the stream, or a copy first.

A 3-phase label map (default 384 x 512 x 512 uint8: a smoothed random field cut into pore / CBD / NMC, as a
segmentation saved by another tool) is written as ``.nii`` (the reference), ``.nii.gz`` and ``.mrc.gz``.  For each
compressed file, what one stage of a chunked run reads is timed: the input's checksum (``lazy_checksum``: slabs of at
most 64 MiB along z) and every chunk of ``--chunk`` voxels once, read in this process,

- 'stream': through ``core.chunked.open_lazy`` of the compressed file, which decompresses it from its start for
  each box (nibabel for a ``.nii.gz``; a whole decompression per box for a compressed MRC): what the chunked engine
  did before session 45, for every stage;
- 'copy first': ``core.chunked.inputs.decompressed_copy`` into a scratch folder, then ``open_lazy`` of the copy
  (memory-mapped), as ``core.chunked.analysis`` does now; the decompression is timed on its own.

The uncompressed ``.nii`` itself is read both ways too: memory-mapped (``core.io.nifti.nifti_voxels_at``, now) and
each box through nibabel (before session 45).

Every read returns the same voxels as the ``.nii`` (checked).  A stage of a run reads its boxes once more at least
(the phases, the fill and shading readings, the checksum); a run reads its input in the phases stage only.

Usage:  python bench/compressed_reads.py [--shape 384x512x512] [--chunk 128] [--work DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

MiB = 2**20


def _shape(text: str) -> tuple[int, int, int]:
    z, y, x = (int(v) for v in text.lower().split("x"))
    return z, y, x


def _labels(shape, seed=0) -> np.ndarray:
    """A 3-phase label map (0 pore, 1 CBD, 2 NMC) cut from a smoothed random field: compresses as label maps do."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random(shape, dtype=np.float32), 3.0)
    lo, hi = np.quantile(field[::4, ::4, ::4], [0.3, 0.45])
    return np.where(field < lo, 0, np.where(field < hi, 1, 2)).astype(np.uint8)


def _write(work: Path, vol: np.ndarray) -> dict[str, Path]:
    import mrcfile
    import nibabel

    files = {"nii": work / "labels.nii", "nii.gz": work / "labels.nii.gz", "mrc.gz": work / "labels.mrc.gz"}
    img = nibabel.Nifti1Image(np.ascontiguousarray(vol.T), np.diag([0.0004, 0.0004, 0.0004, 1.0]))
    img.header.set_xyzt_units("mm")
    nibabel.save(img, files["nii"])
    nibabel.save(img, files["nii.gz"])
    with mrcfile.new(files["mrc.gz"], vol, compression="gzip", overwrite=True) as mrc:
        mrc.voxel_size = 4.0
    return files


def _read_all(path: Path, chunk: int) -> tuple[float, int]:
    """The seconds to read the checksum's slabs and every chunk once through ``open_lazy(path)``; a sum of the
    voxels (to check that every read returns the same)."""
    from core.chunked import open_lazy
    from core.chunked.analysis import lazy_checksum

    t0 = time.perf_counter()
    vol = open_lazy(path, chunks=chunk)
    lazy_checksum(vol.data)
    total = 0
    z, y, x = vol.shape
    for z0 in range(0, z, chunk):
        for y0 in range(0, y, chunk):
            for x0 in range(0, x, chunk):
                total += int(np.asarray(vol.reader[z0:z0 + chunk, y0:y0 + chunk, x0:x0 + chunk], np.int64).sum())
    return time.perf_counter() - t0, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=_shape, default=(384, 512, 512), help="ZxYxX of the label map")
    ap.add_argument("--chunk", type=int, default=128, help="chunk edge (voxels)")
    ap.add_argument("--work", default=str(C.BENCH_DIR / "out" / "compressed_reads"))
    ap.add_argument("--section", default="compressed_reads")
    C.add_common_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.shape, args.chunk = (48, 96, 96), 32
    from core.chunked.inputs import decompressed_copy

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    vol = _labels(args.shape)
    files = _write(work, vol)
    _read_all(files["nii"], args.chunk)  # imports and the page cache: untimed
    ref_s, ref_sum = _read_all(files["nii"], args.chunk)
    n_chunks = int(np.prod([-(-n // args.chunk) for n in args.shape]))
    rows = [{"file": "labels.nii (reference)", "file MiB": files["nii"].stat().st_size / MiB,
             "read": "memory-mapped (now)", "decompress s": "-", "reads s": ref_s, "total s": ref_s}]
    C.print_row(rows[-1])
    import core.io.nifti as nifti

    at, nifti.nifti_voxels_at = nifti.nifti_voxels_at, lambda path: None  # each box through nibabel, as before
    try:
        nib_s, nib_sum = _read_all(files["nii"], args.chunk)
    finally:
        nifti.nifti_voxels_at = at
    rows.append({"file": "labels.nii", "file MiB": files["nii"].stat().st_size / MiB, "read": "through nibabel (before)",
                 "decompress s": "-", "reads s": nib_s, "total s": nib_s})
    C.print_row(rows[-1])
    assert nib_sum == ref_sum
    for kind in ("nii.gz", "mrc.gz"):
        path = files[kind]
        size = path.stat().st_size / MiB
        stream_s, stream_sum = _read_all(path, args.chunk)
        rows.append({"file": path.name, "file MiB": size, "read": "stream (before)", "decompress s": "-",
                     "reads s": stream_s, "total s": stream_s})
        C.print_row(rows[-1])
        t0 = time.perf_counter()
        copy = decompressed_copy(path, work / "copy", vol.nbytes)
        dec_s = time.perf_counter() - t0
        copy_s, copy_sum = _read_all(copy, args.chunk)
        rows.append({"file": path.name, "file MiB": size, "read": "copy first (now)", "decompress s": dec_s,
                     "reads s": copy_s, "total s": dec_s + copy_s})
        C.print_row(rows[-1])
        shutil.rmtree(work / "copy")
        assert stream_sum == copy_sum == ref_sum, "every read must return the same voxels"
    z, y, x = args.shape
    description = (f"Label map {z}×{y}×{x} uint8 ({vol.nbytes / MiB:.0f} MiB), chunks of {args.chunk}³ "
                   f"({n_chunks} chunks); the reads: the checksum's slabs and every chunk once (one stage of a "
                   "chunked run). Every read returned the same voxels.")
    lines = C.section_lines("A compressed NIfTI / MRC file read by the chunked engine (`bench/compressed_reads.py`)",
                            time.perf_counter() - t_start, load_start, description, {"Per file and read": rows})
    C.publish("compressed_reads", lines, args, section=args.section)


if __name__ == "__main__":
    main()
