"""Cached wrappers around core and the workspace.

* ``st.cache_resource`` (shared, must be treated as read-only): the workspace
  object, volumes, label/phase arrays and the slice preview's threshold-independent
  context (:class:`core.phases.PreviewContext`, its slab read-only).  Arrays are returned with
  ``writeable=False`` so an accidental write raises.
* ``st.cache_data(max_entries=...)`` (copied per hit): tables, histograms,
  2D slices, images, 3D pages.

Keys are the workspace root, ids and frozen parameter dataclasses: never big
arrays.  A volume is keyed by :class:`VolumeRef` (sample id + source +
reading options), a result by its analysis id (a new run is a new id, so a
cached result is never stale).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import streamlit as st

from core import compare, comparison
from core import connectivity as core_connectivity
from core import phases as core_phases
from core.connectivity import ContactGraph
from core.nn.params import ModelParams
from core.phases import PreviewContext, PreviewGlobals, SegmentParams
from core.workspace import Analysis, Sample, Workspace

from . import compute, render, settings

#: A preview window, ((r0, r1), (c0, c1)) pixels of the slice (:func:`core.phases.preview_window`).
Window = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class VolumeRef:
    """What identifies a sample's greyscale volume (hashable, small)."""

    root: str
    sample_id: int
    source: str
    options: str  # JSON, sorted keys

    @classmethod
    def of(cls, ws: Workspace, sample: Sample) -> "VolumeRef":
        return cls(str(ws.root), sample.id, sample.source, json.dumps(sample.source_options, sort_keys=True))


@dataclass(frozen=True)
class ResultRef:
    """A finished analysis in a workspace."""

    root: str
    analysis_id: int

    @classmethod
    def of(cls, ws: Workspace, analysis: Analysis) -> "ResultRef":
        return cls(str(ws.root), analysis.id)


def _readonly(a: np.ndarray) -> np.ndarray:
    if a.flags.writeable:
        a.flags.writeable = False
    return a


# --------------------------------------------------------------------------- resources


@st.cache_resource(show_spinner=False)
def _workspace(root: str) -> Workspace:
    return Workspace(root)


def workspace() -> Workspace:
    """The workspace at ``$DETACH_WORKSPACE`` (default ``./workspace``), opened once per process."""
    return _workspace(str(settings.workspace_root()))


@st.cache_resource(show_spinner=False)
def startup_lock(root: str) -> threading.Lock:
    """One lock per workspace so two sessions never prepare the demos at once."""
    return threading.Lock()


def _confine_source(source: str) -> None:
    """Confine a sample read from the data folder to it again before reading (a link or a slice in it may have
    changed since it was added): ValueError (one sentence, :func:`ui.confine.confine`) where it now points out."""
    from pathlib import Path

    from .confine import confine

    if source.startswith("demo:") or not Path(source).is_absolute():
        return
    root, path = settings.data_dir(), Path(source)
    for r in {root, root.resolve()}:
        if path == r or r in path.parents:
            confine(root, path)
            return


#: Voxels above which a sample's greyscale is read lazily, box by box (:func:`volume`): the size above which a
#: run's global values come from blocks of the volume (:func:`core.phases.grey_sample`), so that below it the
#: whole read is what the preview's global values read anyway, and every result stays as it was.
LAZY_VOXELS = 16_000_000


@st.cache_resource(max_entries=6, show_spinner="Loading the volume…")
def volume(ref: VolumeRef):
    """The greyscale volume (read-only): an ndarray, or, for a big one, a :class:`core.chunked.LazyArray`.

    The rule: a volume read from a file of more than :data:`LAZY_VOXELS`
    voxels (in the file), whatever its format, and a demo electrode of that
    size (memory-mapped, not downsampled), come as a
    :class:`~core.chunked.LazyArray`, of which an index reads only the box it
    covers (the file's header is read to decide; a pre-segmented volume's
    boxes come as phase codes, a downsampled one's as the block means
    :func:`core.io.downsampling.downsample` gives, read from the planes they
    cover): index it (a slice, a slab, the sampled blocks of
    :func:`core.phases.grey_sample`), never take it whole (``np.asarray`` of
    it raises TypeError).  Every other volume is read as before
    (:meth:`Workspace.load_volume`: memory-mapped for npy, raw and
    uncompressed TIFF, whole for the other formats).

    Raises what :meth:`Workspace.load_volume` (or :func:`core.chunked.open_lazy`, the same checks) raises, and
    ValueError for a sample in the data folder that now points outside it.
    """
    _confine_source(ref.source)
    opts = json.loads(ref.options)
    if opts.get(FLATTEN_OPTION):  # the volume with its drift along z flattened, as a run with flatten reads it
        raw = unflattened_ref(ref)
        vol = volume(raw)
        found = fill(raw)  # a fill keeps its one value (the analysis leaves it out as before)
        keep = None if found is None else found["value"]
        if is_lazy(vol):  # read box by box, each flattened as it is read
            from core.chunked import flattened_array

            return flattened_array(vol, shading(raw), keep=keep)
        return _readonly(core_phases.flatten_shading(vol, shading(raw), keep=keep))
    return open_volume(_workspace(ref.root), ref.sample_id)


#: A :class:`VolumeRef` option: the volume with its brightness drift along z flattened
#: (:func:`core.phases.flatten_shading`; for a run with ``SegmentParams(flatten=True)``).
FLATTEN_OPTION = "flatten_shading"


def flattened_ref(ref: VolumeRef) -> VolumeRef:
    """The ref of ``ref``'s volume flattened along z (what the Segment page previews when flatten is chosen)."""
    return replace(ref, options=json.dumps({**json.loads(ref.options), FLATTEN_OPTION: True}, sort_keys=True))


def unflattened_ref(ref: VolumeRef) -> VolumeRef:
    opts = {k: v for k, v in json.loads(ref.options).items() if k != FLATTEN_OPTION}
    return replace(ref, options=json.dumps(opts, sort_keys=True))


@st.cache_data(max_entries=32, show_spinner="Checking the grey values…")
def greyscale_refusal(ref: VolumeRef) -> str | None:
    """Why a greyscale held whole cannot be segmented (:func:`core.phases.check_greyscale_nonfinite`: constant, all
    or too many voxels not finite), in one sentence; None where it can, and for a volume read lazily (a whole scan
    there is a job's: its run refuses it in the same words)."""
    from .messages import one_sentence

    vol = volume(ref)
    if is_lazy(vol):
        return None
    try:
        core_phases.check_greyscale_nonfinite(vol, name="it")  # (said as 'This volume cannot be segmented: it ...')
    except (ValueError, TypeError) as exc:
        return one_sentence(exc)
    return None


@st.cache_data(max_entries=32, show_spinner="Comparing neighbouring slices…")
def alignment(ref: VolumeRef) -> dict | None:
    """:func:`core.phases.alignment_reading` of a sample's volume as read: its greyscale, or the phase codes of an
    already-segmented one (a FIB-SEM stack segmented before it was aligned); None for one too thin or whose slices
    were aligned as read.  Two planes a pair are read, also of a big one read lazily."""
    opts = json.loads(ref.options)
    if (opts.get("read") or {}).get("align") is not None:  # aligned here: see core.pipeline.read_grey
        return None
    return core_phases.alignment_reading(volume(unflattened_ref(ref)))


@st.cache_data(max_entries=32, show_spinner="Reading the grey values along z…")
def shading(ref: VolumeRef) -> dict | None:
    """:func:`core.phases.shading_reading` of a sample's greyscale as read, a fill's value left out (None for an
    already-segmented one or one too thin); a big one read lazily is read slab by slab."""
    if "phase_map" in json.loads(ref.options):
        return None
    raw = unflattened_ref(ref)
    found = fill(raw)
    return core_phases.shading_reading(volume(raw), exclude=None if found is None else found["value"])


def open_volume(ws: Workspace, sample_id: int, lazy_voxels: int | None = None):
    """:func:`volume` without the cache (``lazy_voxels``: :data:`LAZY_VOXELS` when None)."""
    from core.chunked import LazyArray, open_lazy_array
    from core.inputs import FileInput

    limit = LAZY_VOXELS if lazy_voxels is None else int(lazy_voxels)
    spec = ws.get_sample(sample_id).input
    if isinstance(spec, FileInput):
        arr, lazy = open_lazy_array(spec.path, phase_map=spec.phase_map, downsample=spec.downsample,
                                    **spec.load_kwargs())  # the header only
        if int(np.prod(lazy.shape)) > limit:  # the file's voxels (a downsampled volume is read from all of them)
            return arr
    vol = ws.load_volume(sample_id)
    if isinstance(vol, np.memmap) and not spec.presegmented and spec.downsample == 1 and vol.size > limit:
        return LazyArray(vol)  # a big demo electrode
    return _readonly(vol)


@st.cache_resource(max_entries=8, show_spinner="Loading the results…")
def result_arrays(ref: ResultRef) -> tuple:
    """(phases, labels) of a finished analysis: read-only ndarrays, or, for an analysis run on the chunked engine,
    the read-only Zarr arrays (:meth:`core.workspace.Workspace.open_phases`), of which an index reads only the
    chunks it touches: index them (one slice, one crop), never take them whole (:func:`is_lazy`)."""
    ws = _workspace(ref.root)
    a = ws.get_analysis(ref.analysis_id)
    phases, labels = ws.open_phases(a), ws.open_labels(a)
    if is_lazy(phases):
        return phases, labels
    return _readonly(phases), _readonly(labels)


def is_lazy(array) -> bool:
    """Whether a result array is read lazily (a chunked analysis's Zarr array) rather than held whole."""
    return not isinstance(array, np.ndarray)


#: Voxels the 3D view reads of a lazily stored analysis: the depth range is read strided down to this.
LAZY_3D_VOXELS = 2**24


def lazy_refusal(analysis: Analysis, what: str) -> str | None:
    """The one sentence that refuses ``what`` (a whole-volume operation) for an analysis stored as Zarr, else None."""
    if not Workspace.is_chunked(analysis):
        return None
    shape = "×".join(str(n) for n in analysis.provenance.get("input_shape") or ()) or "big"
    return (f"Analysis #{analysis.id} ran chunk by chunk on a {shape}-voxel volume, so {what} (which needs the "
            "whole volume in memory) is not offered for it.")


# --------------------------------------------------------------------------- data


@st.cache_data(max_entries=32, show_spinner=False)
def table(ref: ResultRef) -> pd.DataFrame:
    """Per-particle table of a finished analysis."""
    return _workspace(ref.root).load_table(ref.analysis_id)


@st.cache_data(max_entries=32, show_spinner=False)
def detachment_by_label(ref: ResultRef) -> np.ndarray:
    """(max label + 1,) detachment per label (NaN where unknown)."""
    t = table(ref)
    n = int(t["label"].max()) + 1 if len(t) else 1
    out = np.full(n, np.nan)
    out[t["label"].to_numpy(np.int64)] = t["detachment"].to_numpy(float)
    return out


@st.cache_resource(max_entries=4, show_spinner=False)
def grey_values(ref: VolumeRef) -> np.ndarray:
    """(N,) float64, read-only: :func:`ui.compute.grey_sample` of the volume (of a lazy one, of its sampled
    blocks), shared by the histogram and the display contrast so that the volume is sampled once."""
    return _readonly(compute.grey_sample(volume(ref)))


@st.cache_data(max_entries=16, show_spinner=False)
def histogram(ref: VolumeRef, bins: int = 128, exclude: float | None = None) -> tuple[pd.DataFrame, float, float]:
    """:func:`ui.compute.histogram_of` the volume's :func:`grey_values`; with ``exclude`` (a fill's value), the
    bars are of the other values (QA walk 9: a fill's spike flattened every other bar), the range of them all."""
    values = grey_values(ref)
    table, lo, hi = compute.histogram_of(values, bins)
    if exclude is not None:
        kept = values[values != exclude]
        if kept.size:
            table = compute.histogram_of(kept, bins)[0]
    return table, lo, hi


@st.cache_data(max_entries=32, show_spinner=False)
def contrast(ref: VolumeRef, lo_pct: float, hi_pct: float) -> tuple[float, float]:
    """Grey values at two percentiles of the volume (display contrast; of its :func:`grey_values`)."""
    return compute.percentiles_of(grey_values(ref), (lo_pct, hi_pct))


@st.cache_data(max_entries=64, show_spinner=False)
def grey_slice(ref: VolumeRef, axis: int, index: int, window: Window | None = None) -> np.ndarray:
    """One slice of the volume (of it, only ``window``: :func:`ui.render.take_slice`)."""
    return render.take_slice(volume(ref), axis, index, window)


def grey_image(ref: VolumeRef, axis: int, index: int, window: Window | None = None) -> np.ndarray:
    """(H, W, 3) uint8: one slice (its ``window``) at the display contrast of the whole volume (its 0.5–99.5
    percentiles); of an already-segmented sample, its phases in the fixed greys of :func:`ui.render.phase_codes_grey`
    (at the codes' contrast its CBD was the grey of a particle with no open interface)."""
    if json.loads(ref.options).get("phase_map"):
        return render.phase_codes_grey(grey_slice(ref, axis, index, window))
    lo, hi = contrast(ref, 0.5, 99.5)
    return render.grey_rgb(grey_slice(ref, axis, index, window), lo, hi)


@st.cache_resource(max_entries=4, show_spinner="Sampling the denoised volume for the preview…")
def preview_globals(ref: VolumeRef, key: SegmentParams) -> PreviewGlobals:
    """Global values a full run would take from this volume (read-only; keyed by :func:`ui.compute.globals_key`)."""
    return core_phases.preview_globals(volume(ref), key)


@st.cache_resource(max_entries=2, show_spinner="Denoising a slab around the slice…")
def preview_context(ref: VolumeRef, axis: int, index: int, params: SegmentParams,
                    window: Window | None = None) -> PreviewContext:
    """Threshold-independent part of a slice preview (read-only; a slab of ~40 slices each, so few are kept).

    ``window``: the part of a large section previewed (:func:`core.phases.preview_window`); None: the whole slice.
    """
    p = compute.context_key(params)
    g = preview_globals(ref, compute.globals_key(p))
    return core_phases.prepare_preview(volume(ref), axis, index, p, globals=g, window=window)


@st.cache_data(max_entries=64, show_spinner=False)
def preview_phases(ref: VolumeRef, axis: int, index: int, params: SegmentParams,
                   window: Window | None = None) -> np.ndarray:
    """Phases of one slice (of its ``window``): :func:`core.phases.preview_from` on the cached context.

    A threshold move redoes only this; the context is built once per slice.
    """
    ctx = preview_context(ref, axis, index, compute.context_key(params), window)
    return core_phases.preview_from(ctx, params.low, params.high)


def preview_note(ref: VolumeRef, axis: int, index: int, params: SegmentParams, window: Window | None = None) -> str:
    """Caption of the slice preview (:func:`ui.compute.preview_note`)."""
    return compute.preview_note(preview_context(ref, axis, index, compute.context_key(params), window))


@st.cache_data(max_entries=32, show_spinner="Running the 3D U-Net on a slab around the slice…")
def preview_model(ref: VolumeRef, axis: int, index: int, params: ModelParams) -> np.ndarray:
    """Phases of one slice by the model (see :func:`ui.compute.preview_model`)."""
    return compute.preview_model(volume(ref), axis, index, params)


@st.cache_data(max_entries=64, show_spinner=False)
def label_slice(ref: ResultRef, axis: int, index: int) -> np.ndarray:
    return render.take_slice(result_arrays(ref)[1], axis, index)


@st.cache_data(max_entries=64, show_spinner=False)
def phase_slice(ref: ResultRef, axis: int, index: int) -> np.ndarray:
    return render.take_slice(result_arrays(ref)[0], axis, index)


@st.cache_data(max_entries=32, show_spinner="Counting the phases…")
def phase_fractions(ref: ResultRef) -> dict[str, float]:
    """Share of each phase: of the whole array, or for a chunked analysis from the voxel counts its run recorded
    (``phase_voxels``), else counted chunk by chunk; of the field of view where the run held a fill outside it as
    no material (:func:`ui.compute.field_of_view_counts`)."""
    phases = result_arrays(ref)[0]
    prov = _workspace(ref.root).get_analysis(ref.analysis_id).provenance or {}
    if is_lazy(phases):
        counts = prov.get("phase_voxels") or compute.phase_counts_blockwise(phases)
    else:
        counts = compute.phase_counts(phases)
    return compute.fractions_of(compute.field_of_view_counts(counts, prov.get("fill")))


@st.cache_data(max_entries=64, show_spinner="Reading the separator side…")
def side_said(ref: ResultRef) -> str | None:
    """:func:`core.metrics.side_warning` of an analysis whose separator side was auto-detected ("auto"): the
    sentence its run recorded, or, for an analysis run before runs recorded it, read from its stored phases (the NMC
    profile along its thickness axis; chunk by chunk for a chunked one).  None where the side was set by hand or is
    clear."""
    from core.metrics import nmc_profile, side_warning

    a = _workspace(ref.root).get_analysis(ref.analysis_id)
    prov = a.provenance or {}
    if "separator_side_warning" in prov:
        return prov["separator_side_warning"]
    if prov.get("separator_side_detected") is None:
        return None
    axis = a.resolved.axis
    phases = result_arrays(ref)[0]
    if is_lazy(phases):
        import dask.array as da

        from core.chunked.measures import nmc_profile_chunked

        profile = nmc_profile_chunked(da.from_zarr(phases), axis)
    else:
        profile = nmc_profile(phases, axis)
    return side_warning(profile, axis)


@st.cache_data(max_entries=64, show_spinner=False)
def max_label(ref: ResultRef) -> int:
    """The largest particle label: of the label array, or of the table for a chunked analysis (its table has a
    row for every label)."""
    labels = result_arrays(ref)[1]
    if is_lazy(labels):
        t = table(ref)
        return int(t["label"].max()) if len(t) else 0
    return int(labels.max())


@st.cache_data(max_entries=32, show_spinner="Building the contact graph…")
def contact_graph(ref: ResultRef, axis: int, separator_side: str, spacing: tuple, depth_bins: int) -> ContactGraph:
    """:func:`core.connectivity.contact_graph` of a finished analysis (keyed by its id and the parameters).

    ValueError (one sentence) for a chunked analysis: the graph needs the whole volumes."""
    phases, labels = result_arrays(ref)
    if is_lazy(labels):
        refusal = lazy_refusal(_workspace(ref.root).get_analysis(ref.analysis_id), "the contact graph")
        raise ValueError(refusal)
    return core_connectivity.contact_graph(labels, phases, spacing, axis=axis, separator_side=separator_side,
                                           depth_bins=depth_bins)


# --------------------------------------------------------------------------- comparison statistics
# Keyed by ((electrode name, ResultRef), ...) and the options: never by tables.  Seeded bootstrap, so a
# rerun shows the same intervals.

Electrodes = tuple[tuple[str, ResultRef], ...]
SEED, N_BOOT = comparison.SEED, comparison.N_BOOT  # the bootstrap of the dashboard's statistics (and a headless run's)


@dataclass(frozen=True)
class Selection:
    """The particles the Compare page's statistics use (a cache key).

    Attributes
    ----------
    electrodes : ((display name, ResultRef), ...)
    min_diameter_um : float
        Particles with a smaller equivalent diameter are left out (0 keeps all).
    """

    electrodes: Electrodes
    min_diameter_um: float = 0.0


def _tables(sel: Selection) -> dict[str, pd.DataFrame]:
    return compare.drop_small({name: table(ref) for name, ref in sel.electrodes}, sel.min_diameter_um)[0]


@st.cache_data(max_entries=16, show_spinner="Bootstrapping the summary…")
def cmp_summary(sel: Selection, groups: tuple[tuple[str, str], ...], edge_policy: str,
                cut: float) -> compare.Summary:
    return compare.summary(_tables(sel), dict(groups), cut=cut, edge_policy=edge_policy, n_boot=N_BOOT,
                           rng=SEED)


@st.cache_data(max_entries=32, show_spinner=False)
def cmp_distributions(sel: Selection, metric: str, weighting: str, edge_policy: str,
                      windows_um: tuple[tuple[str, tuple[float, float, float] | None], ...],
                      discs_um: tuple[tuple[str, float | None], ...] = ()) -> compare.Distributions:
    return compare.distributions(_tables(sel), metric, weighting=weighting, edge_policy=edge_policy,
                                 windows_um=dict(windows_um), discs_um=dict(discs_um))


@st.cache_data(max_entries=16, show_spinner="Testing the pairs…")
def cmp_pairwise(sel: Selection, metric: str, edge_policy: str, label: str) -> compare.PairwiseTests:
    return compare.pairwise_tests(_tables(sel), metric, edge_policy=edge_policy, rng=SEED, n_boot=N_BOOT,
                                  label=label)


@st.cache_data(max_entries=16, show_spinner="Binning…")
def cmp_trend(sel: Selection, x: str, bins: int, binning: str, value_range: tuple[float, float] | None,
              edge_policy: str, low_n: int) -> compare.Trend:
    return compare.trend(_tables(sel), x, bins=bins, binning=binning, value_range=value_range,
                         edge_policy=edge_policy, low_n=low_n, n_boot=N_BOOT // 2, rng=SEED)


@st.cache_data(max_entries=16, show_spinner="Testing the trend across electrodes…")
def cmp_electrode_trend(sel: Selection, values: tuple[tuple[str, float], ...], attribute: str, unit: str,
                        x_scale: str, edge_policy: str, cut: float) -> compare.ElectrodeTrend:
    """Electrodes on an axis: the electrodes named in ``values`` (with their attribute values)."""
    tables = {n: t for n, t in _tables(sel).items() if n in dict(values)}
    return compare.electrode_trend(tables, dict(values), cut=cut, attribute=attribute, unit=unit, x_scale=x_scale,
                                   edge_policy=edge_policy, n_boot=N_BOOT, rng=SEED)


@dataclass(frozen=True)
class View3DParams:
    """Options of the 3D view.

    ``cbd_opacity`` only matters with ``show_cbd`` (the page leaves it at its
    default otherwise, so moving the slider while the CBD is hidden renders nothing anew).
    """

    depth_range: tuple[float, float] = (0.0, 1.0)
    max_triangles: int = 100_000
    interactive: bool = True
    show_cbd: bool = False
    cbd_opacity: float = 0.2


def _depth_crop(shape: tuple, axis: int, depth_range: tuple[float, float],
                separator_side: str, extent=None) -> tuple[slice, slice, slice]:
    """The crop of a depth range (the whole volume for 0-1; else of the electrode's slices where ``extent``)."""
    n = shape[axis]
    if tuple(depth_range) == (0.0, 1.0):
        extent = None  # everything, a margin beyond the electrode included
    a = render.depth_index(depth_range[0], n, separator_side, extent)
    b = render.depth_index(depth_range[1], n, separator_side, extent)
    lo, hi = min(a, b), max(a, b) + 1
    crop = [slice(None)] * 3
    crop[axis] = slice(lo, hi)
    return tuple(crop)  # type: ignore[return-value]


@st.cache_data(max_entries=6, show_spinner="Building the 3D surfaces…")
def surfaces3d(ref: ResultRef, depth_range: tuple[float, float], max_triangles: int, show_cbd: bool, axis: int,
               separator_side: str, spacing: tuple) -> dict:
    """Meshes of a depth range: the particles (coloured by detachment) and, with ``show_cbd``, the CBD.

    Within ``max_triangles`` in all: the CBD takes at most a third
    (:func:`ui.view3d.split_budget`), the particles the rest.

    Returns
    -------
    dict
        ``particles`` (PolyData), ``info`` (MeshInfo), ``cbd`` (PolyData or None), ``cbd_info`` (MeshInfo or None).
    """
    from . import view3d as v3

    phases, labels = result_arrays(ref)
    extent = _workspace(ref.root).get_analysis(ref.analysis_id).provenance.get("depth_extent")
    crop = _depth_crop(labels.shape, axis, depth_range, separator_side, extent)
    read_stride, origin = 1, None
    span = (crop[axis].start, crop[axis].stop)  # the depth range's slices along the thickness axis
    if is_lazy(labels):  # a chunked analysis: read the depth range strided, never whole
        crop, read_stride = v3.strided_crop(labels.shape, crop, LAZY_3D_VOXELS)
        labels = np.asarray(labels[crop])
        phases = np.asarray(phases[crop]) if show_cbd else None
        origin = v3.crop_origin(spacing, crop)
        spacing, crop = tuple(float(v) * read_stride for v in spacing), None
    cbd_budget, _ = v3.split_budget(max_triangles, show_cbd)
    cbd = cbd_info = None
    if show_cbd:
        cbd, cbd_info = v3.phase_mesh(phases, spacing, 1, max_triangles=cbd_budget, crop=crop)
    left = int(max_triangles) - (cbd_info.n_triangles if cbd_info else 0)
    mesh, info = v3.particle_mesh(labels, spacing, detachment_by_label(ref), max_triangles=left, crop=crop)
    if origin is not None:  # the strided read starts at the crop's corner
        for m in (mesh, cbd):
            if m is not None and m.n_points:
                m.translate(origin, inplace=True)
    return {"particles": mesh, "info": info, "cbd": cbd, "cbd_info": cbd_info, "read_stride": read_stride,
            "span": span}


def centred_particles(ref: ResultRef, axis: int, span: tuple, spacing: tuple) -> int:
    """The particles of the analysis's table whose centre lies in slices ``span`` = (start, stop) along ``axis``
    (None: open), the count of a depth range whose labels were read strided: a particle of a few voxels can fall
    between the sampled voxels, so the labels read would undercount (QA: 1791 of 1864)."""
    t = table(ref)
    centre = t[f"centroid_{'zyx'[axis]}_um"].to_numpy(float) / float(spacing[axis]) + 0.5  # voxel k covers [k, k+1)
    lo, hi = span
    inside = np.ones(len(t), bool) if lo is None else centre >= lo
    if hi is not None:
        inside &= centre < hi
    return int(np.count_nonzero(inside))


@st.cache_data(max_entries=6, show_spinner="Rendering the 3D view…")
def view3d(ref: ResultRef, params: View3DParams, axis: int, separator_side: str, spacing: tuple) -> dict:
    """Mesh the particles (and optionally the CBD) of a depth range and render it.

    Returns
    -------
    dict
        ``html`` (vtk.js page or None), ``png`` (RGB array), ``error`` (why the
        interactive export failed, or None), ``n_triangles``, ``n_particles``, ``stride``
        (particles), ``n_cbd_triangles`` and ``cbd_stride`` (None without the CBD).
    """
    from . import view3d as v3

    s = surfaces3d(ref, tuple(params.depth_range), int(params.max_triangles), bool(params.show_cbd), axis,
                   separator_side, spacing)
    mesh, info, cbd, cbd_info = s["particles"], s["info"], s["cbd"], s["cbd_info"]
    read = s.get("read_stride", 1)  # a chunked analysis's volumes are read strided
    # read strided, the labels of a chunked analysis miss small particles: counted from the table (their centres)
    counted = centred_particles(ref, axis, s["span"], spacing) if read > 1 else info.n_particles
    out = {"html": None, "png": None, "error": None, "n_triangles": info.n_triangles,
           "n_particles": counted, "centred": read > 1, "n_drawn": info.n_drawn, "stride": info.stride * read,
           "n_cbd_triangles": cbd_info.n_triangles if cbd_info else None,
           "cbd_stride": cbd_info.stride * read if cbd_info else None}
    if info.n_triangles == 0:
        out["error"] = "no particle in this depth range"
        return out
    out.update(v3.render(mesh, interactive=params.interactive, cbd=cbd, cbd_opacity=params.cbd_opacity))
    return out


@st.cache_data(max_entries=6, show_spinner="Drawing the particle face by face…")
def particle3d(ref: ResultRef, label: int, spacing: tuple, interactive: bool, show_cbd: bool,
               cbd_opacity: float) -> dict:
    """One particle's surface, face by face, coloured by what each face touches (:func:`core.surface.particle_faces`,
    :func:`ui.view3d.face_mesh`), and rendered; only the window around it is read (a chunked analysis too).

    Returns
    -------
    dict
        ``html`` / ``png`` / ``error`` as :func:`view3d`; ``areas`` ({kind: µm²} of the faces drawn),
        ``detachment`` (of the faces drawn), ``n_faces``, ``table`` (the table's ``area_*_um2`` of the particle).
    """
    from core.surface import particle_faces, window_around

    from . import view3d as v3

    phases, labels = result_arrays(ref)
    t = table(ref)
    row = t.loc[t["label"] == int(label)].iloc[0]
    window = window_around([row[f"centroid_{a}_um"] for a in "zyx"], [row[f"extent_{a}_um"] for a in "zyx"], spacing,
                           labels.shape)
    faces = particle_faces(labels, phases, int(label), spacing, window=window)
    mesh = v3.face_mesh(faces, origin=v3.round_origin(spacing, window))
    out = {"areas": faces.areas(), "detachment": faces.detachment, "n_faces": int(len(faces.kind)),
           "table": {k: float(row[f"area_{k}_um2"]) for k in ("pore", "cbd", "particle", "edge")}}
    cbd = v3.phase_mesh(phases, spacing, crop=window)[0] if show_cbd else None
    out.update(v3.render(mesh, interactive=interactive, cbd=cbd, cbd_opacity=cbd_opacity))
    return out


@st.cache_data(max_entries=32, show_spinner="Reading the file's metadata…")
def probe(path: str, options_json: str, mtime: float) -> dict:
    """Shape, dtype and spacing of a volume file (its header only: :func:`core.chunked.open_lazy`; ``mtime`` only
    keys the cache).

    Raises what :func:`core.io.load_volume` raises for a bad file (the checks it makes before reading voxels).
    """
    from core.chunked import open_lazy

    v = open_lazy(path, **json.loads(options_json))
    meta = dict(v.metadata)
    return {
        "shape": [int(n) for n in v.data.shape], "dtype": str(v.data.dtype), "spacing": list(v.spacing),
        "from_metadata": bool(v.spacing_from_metadata), "fmt": v.fmt,
        "z_assumed": bool(meta.get("spacing_z_assumed", False)),
        "spacing_unit": meta.get("spacing_unit"),  # a raw file's header: how its numbers were read
        "spacing_log": meta.get("spacing_log"),  # a slice folder's voxel size from a SkyScan log beside it
        "lossy": meta.get("lossy"),  # a JPEG image
        "spacing_source": meta.get("spacing_source"),
        "data_bar_rows": meta.get("data_bar_rows"),  # an SEM image's data bar, as its metadata states it
        "sem_tilt": meta.get("sem_tilt"),  # an SEM image's stage tilt and tilt correction (core.io.sem.sem_tilt)
    }


@st.cache_data(max_entries=32, show_spinner=False)
def fill(ref: VolumeRef) -> dict | None:
    """:func:`core.phases.fill_reading` of a sample's greyscale (of a big one read lazily, on its middle z plane
    only, which the slice viewer reads anyway; None for an already-segmented one)."""
    from core.phases import fill_reading

    if "phase_map" in json.loads(ref.options):
        return None
    vol = volume(ref)
    return fill_reading(_middle_plane(ref, vol)) if is_lazy(vol) else fill_reading(vol)


@st.cache_data(max_entries=32, show_spinner=False)
def data_bar(ref: VolumeRef) -> dict | None:
    """:func:`core.io.sem.data_bar` of a sample's greyscale, found in its middle z plane (the one the slice viewer
    reads anyway; None for an already-segmented one)."""
    from core.io.sem import volume_data_bar

    if "phase_map" in json.loads(ref.options):
        return None
    vol = volume(ref)
    return volume_data_bar(vol, _middle_plane(ref, vol)[0] if is_lazy(vol) else None)


def _middle_plane(ref: VolumeRef, vol) -> np.ndarray:
    """(1, Y, X): the middle z plane of a lazily read volume, the one :func:`ui.page.read_volume` has read."""
    return grey_slice(ref, 0, vol.shape[0] // 2)[None]


@st.cache_data(max_entries=32, show_spinner="Finding the region with data…")
def fill_box(ref: VolumeRef, value: float) -> list[list[int]] | None:
    """:func:`core.phases.data_box` of a sample's greyscale (voxels of the volume as read).  A big one read lazily:
    the box of its middle z plane over every plane (a field of view is the same along z; the fill test, run again
    after the crop, says where it is not)."""
    from core.phases import data_box

    vol = volume(ref)
    if not is_lazy(vol):
        return data_box(vol, value)
    box = data_box(_middle_plane(ref, vol), value)
    return None if box is None else [[0, int(vol.shape[0])], box[1], box[2]]


#: Formats whose single z plane is read without reading more planes (a page, a file, the bytes of a plane): the
#: add form's crop preview reads a plane of these, of others (HDF5 / Zarr chunked in z) only up to LAZY_VOXELS.
PLANE_FORMATS = ("tiff", "slices", "raw", "npy", "metaimage")


@st.cache_data(max_entries=8, show_spinner="Reading a slice…")
def file_plane(path: str, options_json: str, mtime: float, z: int) -> np.ndarray | None:
    """Plane ``z`` of a volume file (whole, not cropped), or None where reading it would read far more than a
    plane (:data:`PLANE_FORMATS`); ``mtime`` only keys the cache."""
    from core.chunked import open_lazy_array

    opts = {k: v for k, v in json.loads(options_json).items() if k != "crop"}
    arr, lazy = open_lazy_array(path, **opts)
    if lazy.fmt not in PLANE_FORMATS and arr.size > LAZY_VOXELS:
        return None
    return np.asarray(arr[int(z)])


@st.cache_data(max_entries=32, show_spinner=False)
def datasets(path: str, mtime: float) -> list[tuple[str, tuple, str]]:
    """Arrays in an HDF5 file or zarr store, or an Amira file's data items (:func:`core.io.list_datasets`)."""
    from core.io import list_datasets

    return [(n, tuple(s), d) for n, s, d in list_datasets(path)]
