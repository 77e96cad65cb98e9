"""Writing OLE compound files (Microsoft's Compound File Binary format, [MS-CFB]) and Zeiss Xradia ``.txm``
reconstructions in them for the tests, independent of :mod:`core.io.txm` (olefile reads what is written here:
``tests/core/test_io_txm.py`` checks that first).

Version 3 (512-byte sectors) or 4 (4096-byte sectors); streams shorter than 4,096 bytes in the mini stream
(64-byte mini sectors), the others in sectors of their own; at most 109 FAT sectors (no DIFAT sectors: files of a
few MB, enough for tests).  ``interleave=True`` allocates the big streams' sectors in turns (one sector of each
stream, then the next of each...), so that their chains are fragmented as a file written in pieces can be.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
MINI, CUTOFF = 64, 4096


class _Node:
    def __init__(self, name, kind, data=b""):
        self.name, self.kind, self.data = name, kind, data  # kind 1 storage, 2 stream, 5 root
        self.kids: dict[str, _Node] = {}
        self.sid = self.left = self.right = self.child = NOSTREAM
        self.start, self.size = END, 0


def _tree(streams: dict[str, bytes]) -> list[_Node]:
    root = _Node("Root Entry", 5)
    for path, data in streams.items():
        parts = path.split("/")
        node = root
        for part in parts[:-1]:
            node = node.kids.setdefault(part.upper(), _Node(part, 1))
        node.kids[parts[-1].upper()] = _Node(parts[-1], 2, bytes(data))
    order = [root]

    def walk(node):
        for kid in node.kids.values():
            kid.sid = len(order)
            order.append(kid)
        for kid in node.kids.values():
            walk(kid)
    root.sid = 0
    walk(root)

    def bst(kids):  # siblings as a balanced binary search tree: shorter names first, then by upper case
        if not kids:
            return NOSTREAM
        mid = len(kids) // 2
        kids[mid].left, kids[mid].right = bst(kids[:mid]), bst(kids[mid + 1:])
        return kids[mid].sid

    for node in order:
        kids = sorted(node.kids.values(), key=lambda n: (len(n.name), n.name.upper()))
        node.child = bst(kids)
    return order


def _entry(node: _Node | None) -> bytes:
    if node is None:
        return b"\0" * 64 + struct.pack("<HBBIII", 0, 0, 1, NOSTREAM, NOSTREAM, NOSTREAM) + b"\0" * 36 + \
            struct.pack("<IQ", 0, 0)
    name = node.name.encode("utf-16-le") + b"\0\0"
    assert len(name) <= 64
    return (name.ljust(64, b"\0") + struct.pack("<HBBIII", len(name), node.kind, 1, node.left, node.right,
                                                node.child)
            + b"\0" * 36 + struct.pack("<IQ", node.start, node.size))


def write_compound(path, streams: dict[str, bytes], *, version: int = 3, interleave: bool = False,
                   data_last: bool = False) -> Path:
    """Write ``streams`` (``"Storage/Stream"`` -> bytes) as a compound file at ``path``: the big streams' sectors,
    the mini stream, the directory, the allocation table; ``data_last``: the allocation table, the directory, the
    mini stream, the big streams (a file cut short then still opens, its last stream short)."""
    ss = 512 if version == 3 else 4096
    nodes = _tree(streams)
    files = [n for n in nodes if n.kind == 2]
    small = [n for n in files if len(n.data) < CUTOFF]
    big = [n for n in files if len(n.data) >= CUTOFF]
    fat: list[int] = []
    sectors: list[bytes] = []

    def alloc(chunk: bytes) -> int:
        sectors.append(chunk.ljust(ss, b"\0"))
        fat.append(END)
        return len(sectors) - 1

    def chain(data: bytes) -> int:
        ids = [alloc(data[i:i + ss]) for i in range(0, len(data), ss)]
        for a, b in zip(ids, ids[1:]):
            fat[a] = b
        return ids[0] if ids else END

    def place_big():  # contiguous, or one sector of each in turn
        pieces = {id(n): [n.data[i:i + ss] for i in range(0, len(n.data), ss)] for n in big}
        ids: dict[int, list[int]] = {id(n): [] for n in big}
        if interleave:
            for k in range(max((len(p) for p in pieces.values()), default=0)):
                for n in big:
                    if k < len(pieces[id(n)]):
                        ids[id(n)].append(alloc(pieces[id(n)][k]))
        else:
            for n in big:
                ids[id(n)] = [alloc(c) for c in pieces[id(n)]]
        for n in big:
            for a, b in zip(ids[id(n)], ids[id(n)][1:]):
                fat[a] = b
            n.start, n.size = ids[id(n)][0], len(n.data)

    def place_small():  # the mini stream and its FAT
        mini = bytearray()
        minifat: list[int] = []
        for n in small:
            n.size = len(n.data)
            if not n.data:
                continue
            first = len(minifat)
            count = math.ceil(len(n.data) / MINI)
            minifat.extend(range(first + 1, first + count))
            minifat.append(END)
            mini += n.data.ljust(count * MINI, b"\0")
            n.start = first
        if mini:
            nodes[0].start, nodes[0].size = chain(bytes(mini)), len(mini)
        start = chain(b"".join(struct.pack("<I", v) for v in minifat)) if minifat else END
        return start, math.ceil(len(minifat) * 4 / ss)

    per = ss // 128
    n_entries = len(nodes) + (-len(nodes) % per)

    def place_dir():  # its sectors now, the entries at the end (they hold the streams' start sectors)
        ids = [alloc(b"") for _ in range(n_entries // per)]
        for a, b in zip(ids, ids[1:]):
            fat[a] = b
        return ids

    if data_last:
        dir_ids = place_dir()
        minifat_start, n_minifat = place_small()
        place_big()
    else:
        place_big()
        minifat_start, n_minifat = place_small()
        dir_ids = place_dir()
    dir_start, n_dir = dir_ids[0], len(dir_ids)
    # the FAT itself, in sectors after everything else or before it (then every sector number moves up)
    n_fat = 1
    while n_fat * (ss // 4) < len(sectors) + n_fat:
        n_fat += 1
    assert n_fat <= 109, "test files stay small enough for the header's DIFAT"
    if data_last:
        def move(v):
            return v + n_fat if v < 0xFFFFFFF0 else v
        fat = [FATSECT] * n_fat + [move(v) for v in fat]
        for n in nodes:
            if n.kind == 5 or n.size >= CUTOFF:  # a small stream's start is a mini sector: it stays
                n.start = move(n.start)
        dir_start, minifat_start = move(dir_start), move(minifat_start)
        fat_ids = list(range(n_fat))
    else:
        fat_ids = list(range(len(sectors), len(sectors) + n_fat))
        fat.extend([FATSECT] * n_fat)
    fat.extend([FREE] * (n_fat * (ss // 4) - len(fat)))
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    entries = b"".join(_entry(n) for n in nodes) + b"".join(_entry(None) for _ in range(n_entries - len(nodes)))
    for k, i in enumerate(dir_ids):  # the entries last: they hold the (moved) start sectors
        sectors[i] = entries[k * ss:(k + 1) * ss]
    body = fat_bytes + b"".join(sectors) if data_last else b"".join(sectors) + fat_bytes
    difat = fat_ids + [FREE] * (109 - n_fat)
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, version, 0xFFFE, 9 if version == 3 else 12, 6) + b"\0" * 6
              + struct.pack("<IIIIIIIII", n_dir if version == 4 else 0, n_fat, dir_start, 0, CUTOFF, minifat_start,
                            n_minifat, END, 0)
              + struct.pack("<109I", *difat))
    path = Path(path)
    path.write_bytes(header.ljust(ss, b"\0") + body)
    return path


#: Xradia's DataType codes -> numpy (little-endian).
XRM_TYPES = {np.dtype("int8"): 2, np.dtype("uint8"): 3, np.dtype("int16"): 4, np.dtype("uint16"): 5,
             np.dtype("int32"): 6, np.dtype("uint32"): 7, np.dtype("float32"): 10, np.dtype("float64"): 11}


def txm_streams(volume: np.ndarray, pixel_um: float | None) -> dict[str, bytes]:
    """The streams of a Zeiss ``.txm`` reconstruction of ``volume`` (Z, Y, X): ``ImageInfo`` and one ``Image<n>``
    per slice, a hundred to an ``ImageData<k>`` storage."""
    z, y, x = volume.shape
    s = {"ImageInfo/ImageWidth": struct.pack("<I", x), "ImageInfo/ImageHeight": struct.pack("<I", y),
         "ImageInfo/NoOfImages": struct.pack("<I", z), "ImageInfo/ImagesTaken": struct.pack("<I", z),
         "ImageInfo/DataType": struct.pack("<I", XRM_TYPES[volume.dtype])}
    if pixel_um is not None:
        s["ImageInfo/PixelSize"] = struct.pack("<f", pixel_um)
    for i in range(z):
        s[f"ImageData{i // 100 + 1}/Image{i + 1}"] = volume[i].astype(volume.dtype.newbyteorder("<")).tobytes()
    return s


def write_txm(path, volume: np.ndarray, pixel_um: float | None = 0.5, **kw) -> Path:
    """A ``.txm`` file of ``volume`` (:func:`txm_streams`, :func:`write_compound`)."""
    return write_compound(path, txm_streams(volume, pixel_um), **kw)
