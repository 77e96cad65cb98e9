"""Pre-segmented phase volumes: voxel values mapped to the codes 0 = pore, 1 = CBD, 2 = NMC."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from ..codes import CBD, NMC, PORE
from ._common import Volume, _name
from .load import load_volume

__all__ = ["apply_phase_map", "boundary_density", "check_not_label_field", "label_field_message", "load_phases",
           "parse_phase_map", "phase_of_name", "propose_phase_map", "thicker_than_nmc", "MAX_PROPOSED_VALUES",
           "NAME_WORDS", "THICKER_RATIO"]

MAX_PROPOSED_VALUES = 8  # a volume with more distinct values is taken as greyscale

_PHASE_ALIASES: dict[str, int] = {
    "pore": PORE,
    "cbd": CBD,
    "binder": CBD,
    "carbon": CBD,
    "nmc": NMC,
    "particle": NMC,
    "solid": NMC,
    "am": NMC,
}
_PHASE_HELP = "pore, cbd (binder, carbon), nmc (particle, solid, am) or the codes 0, 1, 2"
_UNMAPPED = 255  # sentinel code in apply_phase_map; real codes are 0..2


def _phase_code(value: object, context: str) -> int:
    """Code 0/1/2 for a phase name, alias or code."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{context} maps to {value!r}; use {_PHASE_HELP}")
    if isinstance(value, (int, np.integer)):
        if int(value) in (PORE, CBD, NMC):
            return int(value)
        raise ValueError(f"{context} maps to the code {int(value)}; use {_PHASE_HELP}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _PHASE_ALIASES:
            return _PHASE_ALIASES[text]
        if re.fullmatch(r"[+-]?\d+", text):
            return _phase_code(int(text), context)
        raise ValueError(f"{context} names an unknown phase {value.strip()!r}; use {_PHASE_HELP}")
    raise TypeError(f"{context} maps to {value!r} of type {type(value).__name__}; use {_PHASE_HELP}")


def parse_phase_map(text: str) -> dict[int, int]:
    """Parse a phase map such as ``"0=pore,128=nmc,255=cbd"``.

    Parameters
    ----------
    text : str
        Entries ``VALUE=PHASE`` separated by commas, semicolons or new lines.
        ``VALUE`` is an integer voxel value of the segmented image; ``PHASE`` is
        a name (case-insensitive): ``pore``, ``cbd`` (aliases ``binder``,
        ``carbon``), ``nmc`` (aliases ``particle``, ``solid``, ``am``), or a code
        ``0``, ``1``, ``2``.  ``:`` may be used instead of ``=``.

    Returns
    -------
    dict[int, int]
        Voxel value -> phase code (0 = pore, 1 = CBD, 2 = NMC).

    Raises
    ------
    ValueError
        If the text is empty, an entry is malformed, a value is not an integer,
        a phase name is unknown, or a voxel value appears twice.
    TypeError
        If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"phase map must be a string like '0=pore,128=nmc,255=cbd', got {type(text).__name__}")
    entries = [e.strip() for e in re.split(r"[,;\n]", text) if e.strip()]
    if not entries:
        raise ValueError("phase map is empty; give entries like '0=pore,128=nmc,255=cbd'")
    result: dict[int, int] = {}
    seen: dict[int, str] = {}
    for entry in entries:
        parts = re.split(r"[=:]", entry)
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"phase map entry {entry!r} is not of the form VALUE=PHASE (e.g. '0=pore')")
        key_text, phase_text = parts[0].strip(), parts[1].strip()
        if not re.fullmatch(r"[+-]?\d+", key_text):
            raise ValueError(f"phase map entry {entry!r} has a voxel value {key_text!r} that is not an integer")
        key = int(key_text)
        code = _phase_code(phase_text, f"phase map entry {entry!r}")
        if key in result:
            raise ValueError(f"phase map gives the voxel value {key} twice ({seen[key]!r} and {entry!r})")
        result[key] = code
        seen[key] = entry
    return result


def _normalize_phase_map(phase_map: Mapping | str) -> dict[int | float, int]:
    if isinstance(phase_map, str):
        return parse_phase_map(phase_map)
    if not isinstance(phase_map, Mapping):
        raise TypeError(f"phase_map must be a mapping {{value: phase}} or a string, got {type(phase_map).__name__}")
    if not phase_map:
        raise ValueError("phase map is empty; give at least one {value: phase} entry")
    out: dict[int | float, int] = {}
    for key, value in phase_map.items():
        if isinstance(key, (bool, np.bool_)):
            key = int(key)
        if isinstance(key, (int, np.integer)):
            k: int | float = int(key)
        elif isinstance(key, (float, np.floating)) and math.isfinite(key):
            k = int(key) if float(key).is_integer() else float(key)
        else:
            raise TypeError(f"phase map keys must be voxel values (numbers), got {key!r}")
        out[k] = _phase_code(value, f"phase map entry {key!r}")
    return out


def _format_value(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(int(v))


def apply_phase_map(data: np.ndarray, phase_map: Mapping[int, int | str] | str, *, name: str = "volume") -> np.ndarray:
    """Convert a segmented image to the phase codes 0 = pore, 1 = CBD, 2 = NMC.

    Parameters
    ----------
    data : numpy.ndarray, any shape, typically (Z, Y, X)
        Segmented voxel values (integer, boolean or floating point).  Not modified.
    phase_map : mapping or str
        Voxel value -> phase, the phase given as a code 0/1/2 or a name accepted
        by :func:`parse_phase_map`; a string is parsed with :func:`parse_phase_map`.
    name : str
        How to call ``data`` in error messages (e.g. the file name).

    Returns
    -------
    numpy.ndarray of uint8, same shape as ``data``
        Phase codes.

    Raises
    ------
    ValueError
        If a voxel value is not in the map (the message names up to 5 such
        values, most frequent first, with their voxel counts), or the map is
        empty or invalid.
    TypeError
        If ``data`` is not a numeric numpy array or the map has the wrong type.

    Notes
    -----
    Vectorised: a lookup table for 8/16-bit integer and boolean data,
    :func:`numpy.searchsorted` on the sorted map keys in slabs along the first
    axis otherwise (bounded temporary memory).
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(data).__name__}")
    if not (data.dtype == bool or data.dtype.kind in "iuf"):
        raise TypeError(f"{name} must be numeric, got dtype {data.dtype}")
    mapping = _normalize_phase_map(phase_map)
    work = data.view(np.uint8) if data.dtype == bool else data
    unmapped: dict = {}
    if work.dtype.kind in "iu" and work.dtype.itemsize <= 2:
        out = _codes_by_lookup(work, mapping, unmapped)
    else:
        out = _codes_by_search(work, mapping, unmapped)
    if unmapped:
        raise ValueError(_unmapped_message(name, unmapped))
    return out


def _note_unmapped(unmapped: dict, values: np.ndarray) -> None:
    """Count the voxel values no map entry covers (NaN counted as ``"nan"``)."""
    vals, counts = np.unique(values, return_counts=True)
    for v, c in zip(vals.tolist(), counts.tolist()):
        key = "nan" if isinstance(v, float) and math.isnan(v) else v
        unmapped[key] = unmapped.get(key, 0) + int(c)


def _codes_by_lookup(work: np.ndarray, mapping: dict, unmapped: dict) -> np.ndarray:
    """8/16-bit integers: a lookup table over every possible value."""
    bits = 8 * work.dtype.itemsize
    info = np.iinfo(work.dtype)
    lut = np.full(2**bits, _UNMAPPED, dtype=np.uint8)
    for k, code in mapping.items():
        if isinstance(k, int) and info.min <= k <= info.max:
            lut[k % 2**bits] = code  # two's complement: index of the unsigned view
    unsigned = work.view(work.dtype.str.replace("i", "u"))
    out = lut[unsigned]
    bad = out == _UNMAPPED
    if bad.any():
        _note_unmapped(unmapped, work[bad])
    return out


def _codes_by_search(work: np.ndarray, mapping: dict, unmapped: dict) -> np.ndarray:
    """Wider integers and floats: :func:`numpy.searchsorted` on the sorted keys, in slabs along the first axis."""
    if work.dtype.kind in "iu":
        info = np.iinfo(work.dtype)
        items = [(k, c) for k, c in mapping.items() if isinstance(k, int) and info.min <= k <= info.max]
    else:
        items = list(mapping.items())
    items.sort(key=lambda kc: kc[0])
    native = work.dtype.newbyteorder("=")
    keys = np.array([k for k, _ in items], dtype=native)
    codes = np.array([c for _, c in items], dtype=np.uint8)
    out = np.empty(work.shape, dtype=np.uint8)
    if work.ndim == 0:
        slabs = [(Ellipsis, work)]
    else:
        per_row = max(1, int(np.prod(work.shape[1:], dtype=np.int64)))
        step = max(1, (1 << 22) // per_row)
        slabs = [(slice(i, i + step), work[i : i + step]) for i in range(0, work.shape[0], step)]
    for index, slab in slabs:
        slab = np.asarray(slab)
        if keys.size == 0:
            hit = np.zeros(slab.shape, dtype=bool)
            out[index] = _UNMAPPED
        else:
            pos = np.searchsorted(keys, slab)
            np.minimum(pos, keys.size - 1, out=pos)
            hit = keys[pos] == slab
            out[index] = np.where(hit, codes[pos], _UNMAPPED)
        if not hit.all():
            _note_unmapped(unmapped, slab[~hit])
    return out


def _is_whole(v) -> bool:
    return v != "nan" and float(v).is_integer()


def _unmapped_message(name: str, unmapped: dict) -> str:
    ranked = sorted(unmapped.items(), key=lambda kv: (-kv[1], str(kv[0])))
    fractional = [(v, c) for v, c in ranked if not _is_whole(v)]
    if fractional:
        n = sum(c for _, c in fractional)
        shown = ", ".join(v if v == "nan" else _format_value(v) for v, _ in fractional[:3])
        return (
            f"{name} holds {n:,} voxel{'s that are' if n != 1 else ' that is'} not a whole number (e.g. {shown}) "
            "and not covered by the phase map, so it is not a segmented volume of labels; analyse a greyscale "
            "volume without a phase map"
        )
    shown = ", ".join(
        f"{v if v == 'nan' else _format_value(v)} ({c:,} voxel{'s' if c != 1 else ''})" for v, c in ranked[:5]
    )
    more = f" and {len(ranked) - 5} more" if len(ranked) > 5 else ""
    example = ranked[0][0]
    return (
        f"{name} holds {len(ranked)} voxel value{'s' if len(ranked) != 1 else ''} that the phase map "
        f"does not cover: {shown}{more}; add them to the phase map "
        f"(e.g. '{example if example == 'nan' else _format_value(example)}=pore')"
    )


def load_phases(path: str | os.PathLike, phase_map: Mapping[int, int | str] | str, **load_kwargs) -> Volume:
    """Load a pre-segmented volume and convert it to phase codes.

    Parameters
    ----------
    path : str or path-like
        Anything :func:`load_volume` reads.
    phase_map : mapping or str
        Voxel value -> phase (code 0/1/2 or name), or text for
        :func:`parse_phase_map`, e.g. ``"0=pore,128=nmc,255=cbd"``.
    **load_kwargs
        Keyword options of :func:`load_volume` (``spacing``, ``fmt``, ``dataset``...).

    Returns
    -------
    Volume
        ``data`` is ``uint8`` of shape (Z, Y, X) holding only 0 = pore, 1 = CBD,
        2 = NMC; ``metadata["phase_map"]`` holds the map used and
        ``metadata["source_dtype"]`` the dtype of the file's voxels.

    Raises
    ------
    ValueError
        As :func:`load_volume`, or if a voxel value of the file is not in
        ``phase_map`` (the message names the file, the values and their counts).
    """
    mapping = _normalize_phase_map(phase_map)  # fail fast, before reading a large file
    vol = load_volume(path, **load_kwargs)
    codes = apply_phase_map(vol.data, mapping, name=f"phase volume {_name(vol.source)}")
    meta = dict(vol.metadata)
    meta.update(phase_map=MappingProxyType(dict(mapping)), source_dtype=str(vol.data.dtype), mmap=False)
    return replace(vol, data=codes, metadata=meta)


def _distinct_values(data: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Sorted distinct values of ``data`` and their voxel counts; None as soon as there are more than ``limit``
    or a value is not a whole number (slabs along the first axis: bounded memory, early exit)."""
    counts: dict = {}
    flat_rows = data.reshape(data.shape[0], -1) if data.ndim > 1 else data.reshape(1, -1)
    per_row = max(1, flat_rows.shape[1])
    step = max(1, (1 << 22) // per_row)
    for i in range(0, flat_rows.shape[0], step):
        slab = np.asarray(flat_rows[i : i + step])
        if data.dtype == bool:
            slab = slab.view(np.uint8)
        if slab.dtype.kind in "iu" and slab.dtype.itemsize <= 2:  # a histogram: no sort
            bits = 8 * slab.dtype.itemsize
            hist = np.bincount(slab.view(slab.dtype.str.replace("i", "u")).ravel(), minlength=2**bits)
            idx = np.flatnonzero(hist)
            vals = idx - 2**bits * (idx >= 2 ** (bits - 1)) if slab.dtype.kind == "i" else idx
            for v, c in zip(vals.tolist(), hist[idx].tolist()):
                counts[v] = counts.get(v, 0) + int(c)
            if len(counts) > limit:
                return None
            continue
        if slab.dtype.kind == "f" and not np.all(np.isfinite(slab)):
            return None
        vals, cnt = np.unique(slab, return_counts=True)
        if slab.dtype.kind == "f" and not np.all(vals == np.round(vals)):
            return None
        for v, c in zip(vals.tolist(), cnt.tolist()):
            counts[v] = counts.get(v, 0) + int(c)
        if len(counts) > limit:
            return None
    keys = sorted(counts)
    return np.array([int(k) for k in keys], dtype=np.int64), np.array([counts[k] for k in keys], dtype=np.int64)


#: Words in a material's name (Avizo's label fields name their values) that say its phase; matched as whole words,
#: case-insensitive (:func:`phase_of_name`).
NAME_WORDS: dict[int, tuple[str, ...]] = {
    NMC: ("nmc", "ncm", "nca", "lco", "lmo", "lnmo", "lfp", "nmc811", "nmc622", "nmc532", "nmc111", "am", "cam",
          "active", "particle", "particles", "grain", "grains", "cathode"),
    CBD: ("cbd", "binder", "carbon", "cb", "pvdf", "additive", "additives", "conductive", "cbm"),
    # pore, and what is not the electrode (the add form's "ignore", stored as pore: no material, touching nothing)
    PORE: ("pore", "pores", "porosity", "void", "voids", "air", "exterior", "background", "electrolyte", "empty",
           "separator", "collector", "foil", "aluminium", "aluminum", "al", "copper", "cu", "substrate"),
}


def label_field_message(name: str, metadata: Mapping) -> str | None:
    """One sentence where a file's own metadata says that its values are labels, not grey values, else None.

    A label field (an Avizo / Amira data item named ``Labels``, or one whose values the file names as materials)
    thresholded as a greyscale scan gives phases and particles that mean nothing, without an error; it is read
    as phases instead (a value -> phase map), or its greyscale item is picked.

    Parameters
    ----------
    name : str
        The file's name, for the sentence.
    metadata : mapping
        :attr:`core.io.Volume.metadata` (``materials``, ``amira_item``).
    """
    materials = dict(metadata.get("materials") or {})
    if not materials and metadata.get("amira_item") != "Labels":
        return None
    named = ", ".join(f"{v} {n!r}" for v, n in list(materials.items())[:6]) + (", ..." if len(materials) > 6 else "")
    return (f"{name} is a label field{f' (materials {named})' if named else ''}, not a greyscale scan: its values "
            "are labels, which thresholds cannot segment; read it as phases with a value -> phase map (--phase-map "
            "VALUE=PHASE,...; inspect proposes one), or pick the file's greyscale item (--dataset)")


def check_not_label_field(name: str, metadata: Mapping) -> None:
    """Raise :class:`~core.io.InputFileError` with :func:`label_field_message` where it has one."""
    from ._common import InputFileError

    message = label_field_message(name, metadata)
    if message is not None:
        raise InputFileError(message)


def phase_of_name(name: str) -> int | None:
    """The phase code a material's name says (:data:`NAME_WORDS`), or None where it says none or several.

    Examples: "NMC particles" -> NMC, "Carbon binder domain" -> CBD, "Exterior" -> pore, "Inside" -> None.
    """
    # words of CamelCase names split ("CarbonBinder", "ActiveMaterial", "NMCParticles": QA, Avizo writes them so)
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", str(name))
    words = set(re.findall(r"[a-z0-9]+", spaced.lower()))
    said = {code for code, keys in NAME_WORDS.items() if words & set(keys)}
    return said.pop() if len(said) == 1 else None


def propose_phase_map(data: np.ndarray, *, max_values: int = MAX_PROPOSED_VALUES,
                      names: Mapping[int, str] | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, int]] | None:
    """Whether ``data`` looks already segmented, and a first guess of which value is which phase.

    Parameters
    ----------
    data : (Z, Y, X) ndarray
        Voxel values: integers of any sign and width, booleans, or floats.  Not modified.
    max_values : int
        A volume with more distinct values than this is taken as greyscale.
    names : mapping {value: name}, optional
        The names a label field gives its values (an Avizo file's materials, ``metadata["materials"]`` of
        :func:`core.io.load_volume`): a value whose name says one phase (:func:`phase_of_name`) is proposed as
        that phase; the others follow the value order.

    Returns
    -------
    (values, shares, proposal) or None
        ``values`` : (N,) int64, the distinct voxel values in increasing order;
        ``shares`` : (N,) float, the fraction of voxels holding each;
        ``proposal`` : {value: phase code 0 pore / 1 CBD / 2 NMC}.  None when
        the volume holds more than ``max_values`` distinct values, a value that
        is not a whole number, or a non-finite value.

    Notes
    -----
    The proposal follows the value order, never the shares (NMC is not always
    the majority phase): two values -> pore, NMC; three -> pore, CBD, NMC (the
    codes of this package, 0/1/2, where the values are exactly 0, 1, 2); more ->
    the lowest pore, the highest NMC, those between CBD.  One value -> NMC.  It
    is a guess for the user to confirm: other tools order the phases otherwise
    (the calendered NREL volume is 0 pore, 1 NMC, 2 CBD).
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy array, got {type(data).__name__}")
    if not (data.dtype == bool or data.dtype.kind in "iuf"):
        raise TypeError(f"data must be numeric, got dtype {data.dtype}")
    if data.size == 0:
        raise ValueError(f"data is empty (shape {data.shape})")
    if int(max_values) < 1:
        raise ValueError(f"max_values must be at least 1, got {max_values}")
    found = _distinct_values(data, int(max_values))
    if found is None:
        return None
    values, counts = found
    n = len(values)
    if n == 1:
        codes = [NMC]
    elif n == 2:
        codes = [PORE, NMC]
    elif n == 3:
        codes = [PORE, CBD, NMC]
    else:
        codes = [PORE] + [CBD] * (n - 2) + [NMC]
    proposal = {int(v): int(c) for v, c in zip(values.tolist(), codes)}
    named = {}
    for v, name in (names or {}).items():
        code = phase_of_name(name)
        if int(v) in proposal and code is not None:
            named[int(v)] = code
    proposal.update(named)
    # values the names leave unsaid take the phases the names leave out, where they match one for one (QA: value 2
    # of "Pores" / "NMC" / an unread name was proposed NMC by its order: two NMC values, no CBD)
    unnamed = [v for v in sorted(proposal) if v not in named]
    missing = [c for c in (PORE, CBD, NMC) if c not in named.values()]
    if named and unnamed and len(unnamed) == len(missing):
        proposal.update(zip(unnamed, missing))
    return values, counts / float(data.size), proposal


#: A phase whose boundary density is below this fraction of the NMC's forms clearly thicker bodies than the NMC
#: (:func:`thicker_than_nmc`).  On the 15 labelled nano-CT slices and the calendered volume's middle slice the true
#: NMC has the lowest density: the others' are 1.25× it (the calendered pore) to 22.7×, the CBD's 2.75× to 16.9×.
#: So the true maps are never told, every map calling the CBD NMC is, and so is the value-order proposal of each
#: (it calls a pore or CBD value NMC); a map swapping NMC with a pore nearly as thick (1.25×) is not.
THICKER_RATIO = 0.8


def boundary_density(codes: np.ndarray, *, ignore: int = -1) -> dict[int, float]:
    """Faces each phase shares with other phases, per voxel of that phase: low for thick bodies, high for thin
    films and bridges.

    Parameters
    ----------
    codes : (Y, X) or (Z, Y, X) integer ndarray
        A code per voxel; ``ignore`` marks voxels of no phase (their faces are not counted, nor they).

    Returns
    -------
    dict {code: float}
        For every code present (not ``ignore``): the faces between a voxel of it and a voxel of another code
        (``ignore`` excluded), along every axis, over its voxel count.
    """
    codes = np.asarray(codes)
    if codes.ndim not in (2, 3) or codes.dtype.kind not in "iu":
        raise TypeError(f"codes must be a 2D or 3D integer array, got {codes.ndim}D {codes.dtype}")
    faces: dict[int, int] = {}
    for axis in range(codes.ndim):
        a = np.moveaxis(codes, axis, 0)
        lo, hi = a[:-1], a[1:]
        cut = (lo != hi) & (lo != ignore) & (hi != ignore)
        for side in (lo[cut], hi[cut]):
            v, n = np.unique(side, return_counts=True)
            for c, k in zip(v.tolist(), n.tolist()):
                faces[c] = faces.get(c, 0) + k
    v, n = np.unique(codes[codes != ignore], return_counts=True)
    return {int(c): faces.get(int(c), 0) / float(k) for c, k in zip(v.tolist(), n.tolist())}


def thicker_than_nmc(codes: np.ndarray, *, ignore: int = -1, min_share: float = 0.02) -> list[int]:
    """The phases (``PORE``, ``CBD``) that form clearly thicker bodies than the phase called NMC in ``codes``
    (:func:`boundary_density` below :data:`THICKER_RATIO` of the NMC's): the sign of a map that called the
    wrong value NMC, since the particles are the thickest phase of a cathode.

    Phases under ``min_share`` of the counted voxels, and maps without NMC, give none.
    """
    density = boundary_density(codes, ignore=ignore)
    if NMC not in density or density[NMC] <= 0:
        return []
    values, counts = np.unique(np.asarray(codes), return_counts=True)
    count = dict(zip(values.tolist(), counts.tolist()))
    counted = sum(n for v, n in count.items() if v != ignore)
    return [code for code in (PORE, CBD) if code in density and count[code] >= min_share * counted
            and density[code] < THICKER_RATIO * density[NMC]]
