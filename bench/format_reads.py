"""Reading a slice of the containers added in session 41: time and peak memory (Avizo HxZip, Zeiss .txm).

One uint16 volume (default 400 x 512 x 512: smooth structure plus noise, as a reconstruction) is written as an Avizo
``.am`` whose voxels are zip-compressed (``HxZip``), and as a Zeiss Xradia ``.txm`` twice: its slices in order
(compound-file version 4, what a writer that writes slice after slice leaves) and with every sector of every slice
interleaved (the most fragmented a compound file can be).  Each measurement runs in a fresh Python process (so that
its peak resident memory, polled every 10 ms by ``preview_window_memory._Rss``, is its own): the file opened as the pages and the chunked engine open it (``core.chunked.open_lazy``: the header, the
``.txm``'s sector runs), then slice Z/2 and slice Z-10 read from the opener's source (:class:`core.io.amira.ZipVolume`
plane by plane, or the ``.txm``'s runs of that slice); and, for the ``.am``, the whole-volume decode the pages and
each chunked-engine process used before session 41 (``layout_voxels(mmap=False)``, one ``zlib.decompress``; its
'open s' is the decode).  Peak RSS is above the process's after its imports.

Usage:  python bench/format_reads.py [--shape 400x512x512] [--work DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)

MiB = 2**20

_CHILD = r"""
import json, sys, time
sys.path[:0] = [{root!r}, {bench!r}]
import numpy as np
from core.chunked import open_lazy
from core.io import amira
from preview_window_memory import _Rss  # the resident memory polled by a thread
kind, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rss = _Rss()
base = rss.reset()
t0 = time.perf_counter()
if mode == "planes":  # what the pages and the chunked engine read: the lazy opener's source, a plane at a time
    vol = open_lazy(path).reader
else:  # the whole-volume decode
    vol = amira.layout_voxels(amira.read_amira_header(path), mmap=False)
t1 = time.perf_counter()
z = vol.shape[0]
a = np.asarray(vol[z // 2:z // 2 + 1])
t2 = time.perf_counter()
b = np.asarray(vol[z - 10:z - 9])
t3 = time.perf_counter()
time.sleep(0.02)
peak = max(rss.peak, rss.now())
print(json.dumps({{"open s": t1 - t0, "first slice s": t2 - t1, "next slice s": t3 - t2,
                  "peak RSS MiB": (peak - base) / 2**20, "checksum": int(a.sum()) + int(b.sum())}}))
"""


def _shape(text: str) -> tuple[int, int, int]:
    z, y, x = (int(v) for v in text.lower().split("x"))
    return z, y, x


def _volume(shape, seed=0) -> np.ndarray:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    coarse = rng.random(tuple(max(2, n // 8) for n in shape)).astype(np.float32)
    smooth = ndi.zoom(coarse, [n / c for n, c in zip(shape, coarse.shape)], order=1)[:shape[0], :shape[1], :shape[2]]
    return (smooth * 30000 + rng.normal(0, 1500, shape)).clip(0, 65535).astype(np.uint16)


def _write_am(path: Path, vol: np.ndarray) -> int:
    z = zlib.compress(vol.astype("<u2").tobytes(), 6)
    nz, ny, nx = vol.shape
    head = (f"# Avizo BINARY-LITTLE-ENDIAN 2.1\n\ndefine Lattice {nx} {ny} {nz}\n\nParameters {{\n"
            f"    BoundingBox 0 {nx - 1} 0 {ny - 1} 0 {nz - 1},\n    CoordType \"uniform\"\n}}\n\n"
            f"Lattice {{ ushort Data }} @1(HxZip,{len(z)})\n\n# Data section follows\n@1\n")
    path.write_bytes(head.encode() + z + b"\n")
    return len(z)


def _measure(kind: str, path: Path, mode: str) -> dict:
    code = _CHILD.format(root=str(C.CORE_ROOT), bench=str(C.BENCH_DIR))
    out = subprocess.run([sys.executable, "-c", code, kind, str(path), mode], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", type=_shape, default=(400, 512, 512), help="ZxYxX of the volume")
    ap.add_argument("--work", default=str(C.BENCH_DIR / "out" / "format_reads"))
    ap.add_argument("--section", default="format_reads")
    C.add_common_args(ap)
    args = ap.parse_args()
    if args.quick:
        args.shape = (40, 128, 128)
    sys.path.insert(0, str(C.REPO_ROOT / "tests"))
    from cfb_files import write_txm  # the tests' compound-file writer

    load_start = os.getloadavg()
    t_start = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    vol = _volume(args.shape)
    raw_mib = vol.nbytes / MiB
    files = {"am": work / "scan_zip.am", "txm": work / "scan.txm", "txm, interleaved": work / "scan_turns.txm"}
    zipped = _write_am(files["am"], vol)
    write_txm(files["txm"], vol, 0.5, version=4)
    if vol.nbytes <= 400 * MiB:  # the tests' writer holds at most 109 allocation-table sectors
        write_txm(files["txm, interleaved"], vol, 0.5, version=4, interleave=True)
    else:
        files.pop("txm, interleaved")
    rows = []
    cases = [("Avizo HxZip", "am", files["am"], "whole"), ("Avizo HxZip", "am", files["am"], "planes"),
             ("Zeiss .txm, slices in order", "txm", files["txm"], "planes")]
    if "txm, interleaved" in files:
        cases.append(("Zeiss .txm, every sector interleaved", "txm", files["txm, interleaved"], "planes"))
    checks = set()
    for label, kind, path, mode in cases:
        r = _measure(kind, path, mode)
        checks.add(r.pop("checksum"))
        how = "whole decode (before session 41)" if mode == "whole" else "open_lazy, a plane at a time"
        rows.append({"file": label, "read": how, "file MiB": path.stat().st_size / MiB, **r})
        C.print_row(rows[-1])
    assert len(checks) == 1, "every read must return the same slices"
    z, y, x = args.shape
    description = (f"Volume {z}×{y}×{x} uint16 ({raw_mib:.0f} MiB; zip-compressed {zipped / MiB:.0f} MiB). Slices "
                   f"read: z = {z // 2}, then z = {z - 10}; every read returned the same voxels. 'first slice s' of "
                   "the plane-by-plane HxZip read includes its one pass over the stream (the checkpoints every "
                   "32 MB of output); the next slice starts from the checkpoint before it. 'open s' of the whole "
                   "decode is the decode.")
    lines = C.section_lines("Reading a slice of an Avizo zip-compressed volume and of a Zeiss .txm "
                            "(`bench/format_reads.py`)", time.perf_counter() - t_start, load_start, description,
                            {"Per file and read": rows})
    C.publish("format_reads", lines, args, section=args.section)


if __name__ == "__main__":
    main()
