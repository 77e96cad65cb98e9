"""The whole analysis in order: phases -> particles -> per-particle table.

:func:`run` takes a greyscale volume (or an already segmented phase volume)
and an :class:`AnalysisParams`, reports progress through a callback, and
returns an :class:`AnalysisResult` with the phases, labels, table, the
parameters as resolved (thresholds filled in) and provenance.

Before any heavy work, :func:`run` checks that the analysis fits in memory
(:func:`core.memory.check_memory`: the estimated peak against the available
memory, the address-space limit and ``DETACH_MEMORY_BUDGET``) and refuses it
with :class:`core.memory.MemoryBudgetError` otherwise.

Non-finite voxels
-----------------
A greyscale volume may hold NaN or infinite voxels (a floating-point
reconstruction's dead or masked voxels).  Up to
:data:`core.phases.NONFINITE_MAX_SHARE` (0.1 %) of the voxels they are
filled with the median of the finite grey values
(:func:`core.phases.nonfinite_fill`): the threshold segmentation fills each
slab as it reads it, the 3D U-Net each tile, so neither sees a NaN (one NaN
voxel used to turn every voxel of a model run into pore), and the run warns
(``warnings.warn``: the CLI writes it into ``run.json``'s ``warnings``) and
records the count as ``nonfinite_filled`` in the provenance.  Above that share
the volume is refused (:func:`core.phases.check_greyscale`) with the share in
the message: that many voxels without a grey value are a region outside the
field of view or a broken reconstruction, which would otherwise be read as
some phase (half a volume of NaN used to be analysed as pore); crop the
volume to the region with data.

A fill outside the reconstructed region
---------------------------------------
One exact grey value on the volume's faces that its centre lacks (the corners
outside a circular field of view, the padding of a rotated volume) is read as
a phase like any other; :func:`core.phases.fill_reading` finds it, and the run
warns with :func:`core.phases.fill_message` (crop it away) and records it as
``fill`` in the provenance (the dashboard's Segment page shows it; the chunked
engine does the same on its input's z planes).

A brightness drift along z
--------------------------
Where the pure phases' grey values change from slice to slice by
:data:`core.phases.SHADING_WARN` of the pore-NMC contrast or more
(:func:`core.phases.shading_reading`), one pair of thresholds reads the same
material as different phases at different depths.  A greyscale run reads it,
records it as ``shading`` in the provenance and warns; with
``SegmentParams(flatten=True)`` (thresholds and the 3D U-Net; a classifier trained on painted slices scales
each z-slice by its own grey values) it maps every slice onto the whole volume's grey values first (:func:`core.phases.flatten_shading`) and
analyses that (the input's checksum stays the file's); the chunked engine does the same chunk by
chunk.
"""

from __future__ import annotations

import functools

import hashlib
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from . import __version__
from ._checks import check_int
from ._kernels import SideWork, numpy_hugepages, recycled_heap
from ._validate import check_choice, check_has_nmc, check_phases, normalize_spacing
from .codes import PORE
from .metrics import (DepthFrom, Side, _particle_table, fov_voxels, nmc_profile, side_of_profile,
                      side_warning)
from .particles import SeparationParams, _separate_particles
from .slices import face_structure, slice_axis, slice_warning
from .nn.params import ModelParams
from .io.downsampling import MAX_DOWNSAMPLE, check_downsample
from .io.sem import data_bar_message, volume_data_bar
from .memory import MemoryBudgetError, check_memory, mark_warm
from .phases import (BLUR_EITHER_WAY, DOWNSAMPLE_MIN_RADIUS, BlurAssessment, SegmentParams, assess_blur,
                     box_blur_removed, check_greyscale_nonfinite, nonfinite_fill, segment_detailed, sigma_origin)
from .phases.fill import fill_message, fill_reading, fill_region, fov_disc
from .phases.alignment import alignment_message, alignment_reading
from .phases.shading import flatten_shading, shading_message, shading_reading
from .phases.islands import _remove_small_islands_inplace

Progress = Callable[[float, str], None]
Method = Literal["threshold", "model", "classifier"]
Particles = Literal["watershed", "model"]
Seeding = Literal["auto", "phases", "regularised", "deconvolved"]
Refine = Literal["auto", "off", "on", "nmc"]
#: The parameter groups of :class:`AnalysisParams` (each a dataclass that checks its fields).
_GROUPS = {"segment": SegmentParams, "separation": SeparationParams, "model": ModelParams}

@dataclass(frozen=True)
class AnalysisParams:
    """Every parameter of an analysis.

    Attributes
    ----------
    method : {"threshold", "model", "classifier"}
        Phases by two thresholds with partial-volume correction, by the 3D
        U-Net of :mod:`core.nn` (which also gives a particle cue, see
        ``particles``), or by a classifier trained on brush strokes
        (:mod:`core.classify`, the folder ``classifier``).  Ignored for
        presegmented input.
    particles : {"watershed", "model"}
        Particle identification: the crack-aware watershed of the distance
        transform, or the seeded watershed of the network's instance cue
        inside the NMC of the phases (needs a greyscale input). With
        ``method="threshold"`` the network runs for its cue only: phases by
        thresholds, particles by the network.
    model : ModelParams
        Weights, tiling and cue threshold of the model method.
    segment : SegmentParams
    separation : SeparationParams
    axis : {0, 1, 2}
        Electrode thickness axis.
    separator_side : {"auto", "start", "end"}
        End of ``axis`` facing the separator.
    classifier : str or None
        With ``method="classifier"`` (and only then): the folder written by
        :func:`core.classify.save_classifier` (``python -m core
        train-classifier``); :func:`run` retrains from its pairs.  Left out of
        :meth:`to_dict` when None, so the parameters of the other methods read
        as before.
    seeding : {"auto", "phases", "regularised", "deconvolved"}
        What the watershed separation seeds and floods on: the NMC of the
        phases, or a regularised NMC mask of the greyscale
        (:func:`core.seeding.regularised_particles`: smoothed by the measured
        noise, cut above the phases' threshold so that blurred necks thin out;
        the labels still cover exactly the NMC of the phases), or the same
        mask cut from the deconvolved greyscale (``"deconvolved"``:
        ``seeding_mask(..., deconvolved=True)``, which also thins the necks
        that the blur filled).  Either needs a
        greyscale input and ``particles="watershed"``.  ``"auto"`` (the
        default): "deconvolved" where the scan's blur measures at least
        :data:`core.seeding.AUTO_BLUR` voxels (:func:`core.seeding.auto_seeding`),
        else "phases"; "phases" for presegmented input, the network's
        particles, a coarsened separation and the chunked engine; resolved in
        the returned parameters.  Left out of :meth:`to_dict` when "phases",
        and :meth:`from_dict` reads a missing ``seeding`` as "phases", so
        parameters and recipes written before "auto" read and replay as before.
    coarsen : int or "auto"
        Separate the particles on a grid reduced by this factor (1..4) and
        bring the labels back onto the full-resolution NMC
        (:mod:`core.coarse`: for scans whose particles are many more voxels
        across than the separation needs); 1 (default): at full resolution;
        ``"auto"``: :func:`core.coarse.auto_factor` of the largest particle
        (:func:`core.chunked.estimate_max_diameter`), resolved to a number in
        the returned parameters.  Needs ``particles="watershed"`` and
        ``seeding="phases"``.  Left out of :meth:`to_dict` when 1, so existing
        parameters and recipes read and replay as before.
    refine : {"auto", "off", "on", "nmc"}
        Refine the thresholded phases against a forward model of the blurred,
        noisy image (:func:`core.phases.forward.refine_phases`, with the blur
        and noise measured on the scan): "on" (every phase boundary moves);
        "nmc" (only the NMC surfaces move: pore and CBD stay as thresholded);
        "off"; "auto" (the default): "on" where the blur measures at least
        :data:`core.seeding.AUTO_BLUR` voxels (the rule and the reading of
        ``seeding="auto"``), else "nmc" where the noise measures at least
        :data:`core.phases.forward.AUTO_NOISE` of the pore-NMC contrast
        (:func:`core.seeding.estimate_relative_noise`), else "off".  Only for
        ``method="threshold"`` on a greyscale (else "off"); the chunked
        engine does not refine.  Resolved in the returned parameters.  Left out of
        :meth:`to_dict` when "off", and :meth:`from_dict` reads a missing
        ``refine`` as "off", so parameters and recipes written before read and
        replay as before.
    depth_from : {"electrode", "volume"}
        What the table's ``depth_frac`` runs over along ``axis``: the
        electrode (the default: its faces where the NMC share of a slice
        reaches half its plateau, :func:`core.metrics.electrode_extent`, so
        that a margin of pore or mounting medium beyond its surface is not
        depth; the slices found are in the provenance), or the whole imaged
        volume.  Left out of :meth:`to_dict` when "volume", and
        :meth:`from_dict` reads a missing ``depth_from`` as "volume" (how
        analyses and recipes written before it measured depth).
    """

    method: Method = "threshold"
    segment: SegmentParams = field(default_factory=SegmentParams)
    separation: SeparationParams = field(default_factory=SeparationParams)
    axis: int = 0
    separator_side: Side = "auto"
    model: ModelParams = field(default_factory=ModelParams)
    particles: Particles = "watershed"
    classifier: str | None = None
    seeding: Seeding = "auto"
    coarsen: int | str = 1
    refine: Refine = "auto"
    depth_from: DepthFrom = "electrode"

    def __post_init__(self):
        for key, cls in _GROUPS.items():
            if not isinstance(getattr(self, key), cls):
                raise TypeError(f"{key} must be {cls.__name__}, got {type(getattr(self, key)).__name__}")
        check_choice(self.method, "method", ("threshold", "model", "classifier"))
        if self.classifier is not None and not isinstance(self.classifier, str):
            raise TypeError(f"classifier must be the path of a classifier folder (a string), got {self.classifier!r}")
        if self.method == "classifier" and not self.classifier:
            raise ValueError("method 'classifier' needs classifier: the folder written by "
                             "'python -m core train-classifier'")
        if self.classifier is not None and self.method != "classifier":
            raise ValueError(f"a classifier is only used with method 'classifier', not {self.method!r}")
        if self.method == "classifier" and self.particles == "model":
            raise ValueError("particles from the model need method 'threshold' or 'model', not 'classifier'")
        check_choice(self.particles, "particles", ("watershed", "model"))
        check_choice(self.refine, "refine", ("auto", "off", "on", "nmc"))
        check_choice(self.seeding, "seeding", ("auto", "phases", "regularised", "deconvolved"))
        if self.seeding not in ("auto", "phases") and self.particles != "watershed":
            raise ValueError(f"seeding {self.seeding!r} is for particles 'watershed', not 'model'")
        from .coarse import check_factor

        check_factor(self.coarsen, "coarsen")
        if self.coarsen != 1 and (self.particles != "watershed" or self.seeding not in ("auto", "phases")):
            raise ValueError(f"coarsen {self.coarsen!r} is for particles 'watershed' seeded on the phases, not "
                             f"particles {self.particles!r} with seeding {self.seeding!r}")
        check_int(self.axis, "axis")
        check_choice(self.axis, "axis", (0, 1, 2))
        check_choice(self.separator_side, "separator_side", ("auto", "start", "end"))
        check_choice(self.depth_from, "depth_from", ("electrode", "volume"))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``classifier`` only when set, ``seeding`` only when not "phases", ``coarsen``
        only when not 1, ``refine`` only when not "off", ``depth_from`` only when not "volume", the
        segmentation's ``flatten`` only when set)."""
        d = asdict(self)
        if d["coarsen"] == 1:
            del d["coarsen"]
        if d["classifier"] is None:
            del d["classifier"]
        if d["seeding"] == "phases":
            del d["seeding"]
        if d["refine"] == "off":
            del d["refine"]
        if d["depth_from"] == "volume":
            del d["depth_from"]
        if not d["segment"]["flatten"]:
            del d["segment"]["flatten"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AnalysisParams":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``.

        A key that parameters written before it lack takes the value the analysis had then: ``seeding``
        "phases", ``refine`` "off", ``depth_from`` "volume", and in a ``separation`` given without it
        ``flood_order`` "fifo" (so that old recipes, which hold every separation parameter, replay as they ran).
        """
        if not isinstance(d, dict):
            raise TypeError(f"analysis parameters must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        d.setdefault("seeding", "phases")  # written before "auto" was the default: it seeded on the phases
        d.setdefault("refine", "off")  # written before the phases were refined
        d.setdefault("depth_from", "volume")  # written before depth ran over the electrode
        if isinstance(d.get("separation"), dict):  # written (whole, by to_dict) before the flood's rounds by row
            d["separation"] = {"flood_order": "fifo", **d["separation"]}
        sub = _GROUPS
        kwargs = {}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown analysis parameter(s) {sorted(unknown)}; known: {sorted(known)}")
        for key, value in d.items():
            if key in sub:
                if not isinstance(value, dict):
                    raise TypeError(f"'{key}' parameters must be a JSON object, got {value!r}")
                names = {f.name for f in fields(sub[key])}
                bad = set(value) - names
                if bad:
                    raise ValueError(f"unknown '{key}' parameter(s) {sorted(bad)}; known: {sorted(names)}")
                try:
                    kwargs[key] = sub[key](**value)
                except (TypeError, ValueError) as exc:  # name the group: "separation.h_um must be a number"
                    raise type(exc)(f"{key}.{exc}") from None
            else:
                kwargs[key] = value
        return cls(**kwargs)


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Output of :func:`run`.

    Attributes
    ----------
    phases : (Z, Y, X) uint8
    labels : (Z, Y, X) uint16 or int32
        uint16 unless the watershed needed int32 labels (more than about
        49,000 basins alive at one time during the flood, as when it ends with
        65535 basins or more; see :func:`core._watershed.watershed_dynamics`);
        int32 with ``separation.markers="peaks"``.
    table : DataFrame
        :func:`core.metrics.particle_table`.
    params : AnalysisParams
        As resolved (thresholds, blur and separator side filled in).
    spacing : (3,) float, µm
    provenance : dict
        Versions, input checksum, shape, timings (s) per step, and
        ``pv_sigma_origin``: ``"given"``, ``"fitted"`` or ``"fitted_at_bound"``
        (None when no blur was used), see :func:`sigma_origin`.
    """

    phases: np.ndarray
    labels: np.ndarray
    table: pd.DataFrame
    params: AnalysisParams
    spacing: tuple[float, float, float]
    provenance: dict


def checksum(array: np.ndarray) -> str:
    """BLAKE2b digest of an array's dtype, shape and bytes (streamed in chunks)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(array.dtype).encode() + str(array.shape).encode())
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ascontiguousarray(array).reshape(-1)
    step = 1 << 24
    for i in range(0, flat.size, step):
        h.update(memoryview(np.ascontiguousarray(flat[i : i + step])).cast("B"))
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit this code was checked out at ("3ac0198e12ab", "+ changes" where its files differ from it), or
    None outside a git checkout: many commits share one package version (QA walk 17: a report named only "core
    0.1.0").  Read once per process: the code a process runs is the code it imported."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "core", "ui", "pages", "app.py"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" + changes" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def versions(*, torch: bool = False) -> dict[str, str]:
    """Versions of the packages that shape the results (torch's too when the model ran)."""
    import numba
    import scipy
    import skimage

    out = {
        "core": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "scikit-image": skimage.__version__, "pandas": pd.__version__,
        "numba": numba.__version__,
    }
    if torch:
        import torch as _torch

        out["torch"] = _torch.__version__
    return out


def _blur_warning(blur: BlurAssessment) -> str:
    """The warning of a run whose blur is not "ok" (:func:`core.phases.assess_blur`), with the CLI's remedy."""
    sigma = f"σ = {blur.sigma:.2f} voxel"
    if blur.kind == "not_measured":
        return (f"The blur fit reached its upper bound ({sigma}): the image's blur could not be measured, so the "
                "partial-volume correction is unreliable here; compare with it switched off (\"partial_volume\": false "
                "in the segment parameters) or give the blur (\"pv_sigma\", voxels).")
    if blur.downsampled > 1:
        sigma += f"; {box_blur_removed(blur.sigma, blur.downsampled):.2f} without the box of the downsampling by " \
                 f"{blur.downsampled}"
    head = (f"The blur ({sigma}) is wider than the partial-volume correction handles (validated at 0.75 voxel), "
            f"{BLUR_EITHER_WAY}")
    if blur.factor < 2:
        return head + f", and the volume cannot be downsampled further (at most {MAX_DOWNSAMPLE} in all)."
    return head + (f". Where the particles' median radius is {DOWNSAMPLE_MIN_RADIUS:g} voxels or more, downsample "
                   f"the volume by {blur.factor} before the analysis (CLI: --downsample {blur.factor}; recipe: "
                   f"\"downsample\": {blur.factor} in the input); smaller particles lose more to the downsampling "
                   "than to the blur (on synthetic packings at a blur of 1.2 voxel, radius 10-14 voxels: a median "
                   "detachment error of 0.09-0.22 downsampled, 0.02 at full resolution), so keep their resolution "
                   "and read its detachment with that in mind.")


def check_nonfinite(volume: np.ndarray) -> int:
    """Check a greyscale volume (:func:`core.phases.check_greyscale`) and warn when it holds non-finite voxels.

    Up to 0.1 % NaN / ±inf voxels are allowed: the segmentation gives them the median grey value of the
    finite voxels (:func:`core.phases.nonfinite_fill`); this warns with their count.  Returns that count.
    """
    return _check_nonfinite(volume, stacklevel=4)


def _check_nonfinite(volume: np.ndarray, *, stacklevel: int) -> int:
    """:func:`check_nonfinite`, its warning ``stacklevel`` frames up from here."""
    nonfinite = check_greyscale_nonfinite(volume)
    if nonfinite:
        share = 100 * nonfinite / volume.size
        warnings.warn(f"{nonfinite} of {volume.size} voxels ({share:.2g} %) are not finite (NaN or "
                      f"infinite); they were given the median grey value of the finite voxels "
                      f"({nonfinite_fill(volume):g}) for the analysis.", stacklevel=stacklevel)
    return nonfinite


def run(
    volume: np.ndarray,
    params: AnalysisParams | None = None,
    *,
    spacing=None,
    presegmented: bool = False,
    progress: Progress | None = None,
    downsampled: int = 1,
    aligned: bool = False,
) -> AnalysisResult:
    """Analyse one volume end to end.

    Parameters
    ----------
    volume : (Z, Y, X) ndarray
        Greyscale, or phase codes 0/1/2 when ``presegmented``.  Not modified.
    params : AnalysisParams
    spacing : float or (3,) float, µm
    presegmented : bool
        ``volume`` already holds phase codes: skip segmentation.
    progress : callable(fraction, message), optional
        Called with the overall fraction done (0..1) and the current step.
    downsampled : int
        The block-mean factor ``volume`` was already reduced by (1: none).
        Only recorded, and used to judge the fitted blur
        (:func:`core.phases.assess_blur`).
    aligned : bool
        ``volume``'s slices were aligned as it was read (an input's ``align``): the slices are not read for a
        shift against one another (:func:`read_grey`).

    Returns
    -------
    AnalysisResult

    Raises
    ------
    core.memory.MemoryBudgetError
        The estimated peak does not fit the available memory (checked first).
    ValueError, TypeError
        Bad volume or parameters; more than 0.1 % non-finite voxels.

    Notes
    -----
    While it runs, numpy is asked not to back new arrays with transparent
    huge pages (:func:`core._kernels.numpy_hugepages`): on the machine
    measured, the first touch of fresh arrays (the slab-wise steps', the
    flood's label volume) cost far more on huge pages.  And the large blocks
    it frees are reused until the particles' flood, its step of peak memory,
    instead of going back to the kernel (:func:`core._kernels.recycled_heap`:
    fewer page faults).  Both restored on return; no value depends on them.
    """
    with numpy_hugepages(False), recycled_heap():
        return _run(volume, params, spacing=spacing, presegmented=presegmented, progress=progress,
                    downsampled=downsampled, aligned=aligned)


def _run(volume: np.ndarray, params: AnalysisParams | None, *, spacing, presegmented: bool,
         progress: Progress | None, downsampled: int, aligned: bool = False) -> AnalysisResult:
    """:func:`run` (numpy's huge-page advice as its caller left it; warnings point at run's caller)."""
    params = params or AnalysisParams()
    downsampled = check_downsample(downsampled, "downsampled")
    estimate = _check_memory(volume, params, presegmented, downsampled)
    sp = normalize_spacing(spacing)
    report = progress or (lambda f, m: None)
    timings: dict[str, float] = {}

    def stage(lo: float, hi: float) -> Progress:
        return lambda f, m: report(lo + (hi - lo) * f, m)

    t0 = time.perf_counter()
    nonfinite = 0
    fill = None
    cue = None
    weights_sha = None
    classifier_sha = None
    model_params = params.model
    if presegmented and params.particles == "model":
        raise ValueError("particles from the model need the greyscale volume, not presegmented phases")
    if presegmented and params.seeding not in ("auto", "phases"):
        raise ValueError(f"seeding {params.seeding!r} needs the greyscale volume, not presegmented phases")
    if presegmented:
        phases = check_phases(volume)
        phases = phases.astype(np.uint8, copy=True)  # the result owns its arrays
        seg_params = params.segment
    else:
        nonfinite = _check_nonfinite(volume, stacklevel=4)
        grey, fill, shading = read_grey(volume, params, stacklevel=4, aligned=aligned)
        network = params.method == "model" or params.particles == "model"
        if params.method == "threshold":
            res = segment_detailed(grey, params.segment, progress=stage(0.0, 0.3))  # (the refinement: 0.3-0.35)
            phases, seg_params = res.phases, res.params
            blur = (assess_blur(seg_params.pv_sigma, downsampled, origin=res.pv_sigma_origin)
                    if seg_params.partial_volume else None)
            del res  # the phases alone (a refinement below replaces them: the thresholded ones are freed then)
            if blur is not None and blur.kind != "ok":
                warnings.warn(_blur_warning(blur), stacklevel=3)
        elif params.method == "classifier":
            phases, classifier_sha = _classify(grey, params.classifier, sp, nonfinite, stage(0.0, 0.35))
            seg_params = params.segment
        if network:  # the model's phases, or only its particle cue for thresholded phases (hybrid)
            from .nn.infer import segment_volume

            lo = 0.0 if params.method == "model" else 0.3
            report(lo, "3D U-Net: phases and particle cue" if params.method == "model" else "3D U-Net: particle cue")
            seg = segment_volume(grey, params.model, progress=stage(lo, 0.6))
            weights_sha = seg.weights_sha256
            model_params = replace(params.model, precision=seg.precision)  # "auto" resolved, for replay
            if params.method == "model":
                phases, seg_params = seg.phases, params.segment
            cue = seg.cue if params.particles == "model" else None
            del seg
        if params.method != "threshold":
            # islands of fewer than min_island voxels join the phase around them, as in thresholded phases
            # (segment_detailed): each isolated speck of the classifier's or the network's phases was a "particle"
            # (on the real nano-CT slices 47-115 of the 77-195 sections of a classified slice were under 20
            # pixels, 0-14 after, IoU within 0.005; bench/RESULTS.md classifier_islands)
            _remove_small_islands_inplace(phases, seg_params.min_island)
    no_data = fov = box = None
    if fill is not None:  # a fill outside the field of view: no material, whichever end of the grey values it holds
        region = fill_region(volume, fill["value"])
        phases[region] = PORE  # no material there, whatever a classifier or the network made of it
        fov = fov_voxels(region, params.axis)  # the slices' NMC shares are of their field of view
        disc = fov_disc(region[region.shape[0] // 2], sp[1:])  # for the Compare page's Miles–Lantuéjoul weights
        fill = {**fill, "as_edge": True, "region_voxels": int(np.count_nonzero(region)), "disc_radius_um": disc}
        no_data = np.packbits(region)  # 1 bit a voxel until the faces are measured
        # the blur, noise and pure grey values are read where the scan holds data: a fill's sharp edge read as a
        # narrow blur, and its flat value pulled the pore's grey value (core.phases.data_box; the whole volume
        # without); from this region, not labelled a second time
        box = _data_box(volume, fill, region)
        del region
    check_has_nmc(phases)
    thin = slice_axis(phases.shape)
    if thin is not None:  # a 2D image: measured in its plane (core.slices)
        warnings.warn(slice_warning(thin, params.axis), stacklevel=3)
    if presegmented:
        grey, shading = volume, None
    refine, blur_read, phases, refined, refine_auto = _refine(grey, phases, params, presegmented=presegmented,
                                                             report=report, downsampled=downsampled, box=box,
                                                             no_data=no_data)
    timings["phases_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    # what needs neither the labels nor the core the separation's flood leaves idle: done meanwhile where it has one
    auto_side = params.separator_side == "auto"
    # one read of the per-slice NMC shares, for the separator side and the electrode's extent
    beside = SideWork(lambda: checksum(volume),
                      lambda: nmc_profile(phases, params.axis, data_voxels=fov)
                      if auto_side or params.depth_from == "electrode" else None)
    coarsen, unlabelled = params.coarsen, None
    if cue is None and coarsen != 1:
        coarsen = resolve_coarsen(phases, sp, coarsen)
    seeding, seeding_blur = _resolve_seeding(grey, phases, params, presegmented=presegmented, cue=cue,
                                             coarsen=coarsen, downsampled=downsampled, report=report, read=blur_read,
                                             box=box)
    if cue is None and coarsen != 1:
        labels, unlabelled = _coarse_particles(phases, sp, params.separation, coarsen, report)
        outside = None
    else:
        labels, outside = _particles(phases, cue, sp, replace(params, seeding=seeding), report, stage(0.35, 0.85),
                                     volume=None if presegmented else grey, nonfinite=nonfinite, side=beside,
                                     blur=seeding_blur)
    del cue
    timings["particles_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report(0.85, f"measuring {int(labels.max())} particles")
    input_checksum, profile, *found = beside.results()
    cracks = found[0] if found else None  # the separation's, where it added them (see _separate_particles)
    side = params.separator_side
    contrast = ambiguous = None
    if side == "auto":  # detect_separator_side's answer, from the whole profile
        side, contrast = side_of_profile(profile)
        if (ambiguous := side_warning(profile, params.axis)) is not None:
            warnings.warn(ambiguous, stacklevel=3)  # (the caller of run, as the others here)
    if cracks is not None:
        outside = None
    elif outside is not None:  # the separation's outside_reach of the NMC: that of the labels, not computed twice
        outside = np.unpackbits(outside, count=labels.size).view(bool).reshape(labels.shape)
    if no_data is not None:  # faces to the fill count as the volume's edge, not pore
        no_data = np.unpackbits(no_data, count=labels.size).view(bool).reshape(labels.shape)
    table = _particle_table(labels, phases, sp, axis=params.axis, separator_side=side, owned=True, outside=outside,
                            cracks=cracks, depth_from=params.depth_from, profile=profile, no_data=no_data)
    del outside, cracks, no_data
    timings["metrics_s"] = time.perf_counter() - t0
    report(1.0, f"done: {len(table)} particles")

    resolved = AnalysisParams(
        method=params.method, segment=seg_params, separation=params.separation, axis=params.axis,
        separator_side=side, model=model_params, particles=params.particles, classifier=params.classifier,
        seeding=seeding, coarsen=coarsen, refine=refine, depth_from=params.depth_from,
    )
    provenance = _provenance(volume, params, resolved, sp, table, input_checksum, presegmented=presegmented,
                             downsampled=downsampled, side_contrast=contrast, side_warning=ambiguous,
                             weights_sha=weights_sha,
                             classifier_sha=classifier_sha, timings=timings)
    provenance.update(nonfinite_filled=int(nonfinite), memory_estimate_bytes=estimate)
    if fill is not None:
        provenance["fill"] = fill
    if shading is not None:  # what the drift test read, and whether the run flattened it
        provenance["shading"] = {**shading, "flattened": bool(params.segment.flatten)}
    if params.seeding == "auto":  # what "auto" read and chose (the returned parameters hold the choice)
        provenance["seeding_auto"] = {"blur_voxels": seeding_blur, "seeding": seeding}
    if refine_auto is not None:  # what refine="auto" read and chose
        provenance["refine_auto"] = refine_auto
    if refined is not None:  # what the forward model measured and changed
        provenance["phase_refinement"] = refined
    if unlabelled is not None:
        provenance["coarse_unlabelled_voxels"] = unlabelled
    mark_warm(params, presegmented=presegmented)
    return AnalysisResult(phases, labels, table, resolved, sp, provenance)


def read_grey(volume: np.ndarray, params: AnalysisParams, *, stacklevel: int = 2, aligned: bool = False):
    """What a run reads of a greyscale before segmenting it: a fill outside the field of view, a drift along z, an
    SEM image's data bar (:func:`core.io.sem.find_data_bar` on the middle z plane) and slices shifted against one
    another (:func:`core.phases.alignment_reading`, unless ``aligned``: slices aligned as they were read, whose
    offsets, rounded to whole pixels, leave a jitter of up to half a pixel that it would read; each warned), and
    the volume to segment (flattened with ``params.segment.flatten``).

    Returns
    -------
    grey : (Z, Y, X) ndarray
        ``volume``, or its flattened copy.
    fill, shading : dict or None
        :func:`core.phases.fill_reading` and :func:`core.phases.shading_reading` of ``volume`` (the fill's value
        left out of the latter).

    Raises
    ------
    ValueError
        ``flatten`` with a method other than thresholds, or a volume too thin to read a drift.
    """
    fill, shading = said_readings(volume, params, stacklevel=stacklevel + 1, aligned=aligned)
    grey = _flattened(volume, shading, params, fill) if params.segment.flatten else volume
    return grey, fill, shading


def said_readings(volume, params: AnalysisParams, *, stacklevel: int = 2, aligned: bool = False):
    """The readings of a greyscale that a run says (each warned): a fill outside the field of view or, instead, an
    SEM image's data bar; slices shifted against one another (not for ``aligned`` slices, see :func:`read_grey`);
    a drift of the grey values along z (unless ``params.segment.flatten`` flattens it).  The whole-volume run
    (:func:`read_grey`) and the chunked engine (on its lazy reader: each reading reads a few planes or slabs) say
    the same.  ``stacklevel`` is :func:`warnings.warn`'s, from here (2: the caller).

    Returns
    -------
    fill, shading : dict or None
        :func:`core.phases.fill_reading` and :func:`core.phases.shading_reading` (the fill's value left out).

    Raises
    ------
    ValueError
        ``flatten`` asked of a volume too thin to read a drift along z.
    """
    fill = fill_reading(volume)
    bar = volume_data_bar(volume)
    if bar is not None:  # said instead of the fill its background looks like (held as no material all the same)
        warnings.warn(data_bar_message(bar), stacklevel=stacklevel)
    elif fill is not None:
        warnings.warn(fill_message(fill), stacklevel=stacklevel)
    shading = shading_reading(volume, exclude=None if fill is None else fill["value"])
    shifted = None if aligned else alignment_message(alignment_reading(volume))  # a FIB-SEM stack not aligned
    if shifted is not None:
        warnings.warn(shifted, stacklevel=stacklevel)
    if params.segment.flatten and shading is None:
        raise ValueError("flatten needs a volume of at least 18 slices (three slabs of six) to read a drift along z")
    if shading is not None and not params.segment.flatten and shading["warn"]:
        warnings.warn(shading_message(shading, params.method), stacklevel=stacklevel)
    return fill, shading


def _flattened(volume: np.ndarray, shading: dict | None, params: AnalysisParams, fill: dict | None = None) -> np.ndarray:
    """``volume`` with its drift along z flattened (``SegmentParams(flatten=True)``; thresholds and the 3D U-Net,
    which scales the whole volume by one pair of percentiles); a fill's value (``fill``,
    :func:`core.phases.fill_reading`) stays as it is."""
    if params.method == "classifier":
        raise ValueError("flatten (of a brightness drift along z) applies to the threshold and model methods, not "
                         "'classifier': a classifier reads the grey values of the images it was trained on (one "
                         "trained on painted slices scales each z-slice by its own grey values)")
    if shading is None:
        raise ValueError("flatten needs a volume of at least 18 slices (three slabs of six) to read a drift along z")
    return flatten_shading(volume, shading, keep=None if fill is None else fill["value"])


def classifier_checksum(folder) -> str:
    """SHA-256 of a classifier folder's training pairs (``pairs.npz``): what a replay compares to tell it changed."""
    from pathlib import Path

    from .classify import PAIRS_FILE

    h = hashlib.sha256()
    with open(Path(folder).expanduser() / PAIRS_FILE, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _classify(volume: np.ndarray, folder: str, sp, nonfinite: int, progress: Progress) -> tuple[np.ndarray, str]:
    """Phases of ``volume`` by the classifier of ``folder`` (retrained from its pairs), and the pairs' SHA-256.

    The classifier predicts slab by slab (:meth:`core.classify.PhaseClassifier.predict`).
    Non-finite voxels (at most 0.1 %, counted and warned about by
    :func:`check_nonfinite`) are given the same median grey value as for the
    threshold method, in a filled copy of the volume (only when there are any).
    """
    from pathlib import Path

    from .classify import load_classifier

    progress(0.0, "training the classifier from its brush strokes")
    path = Path(folder).expanduser()
    classifier = load_classifier(path)  # refuses anything but a classifier folder, in one sentence
    sha = classifier_checksum(path)
    if nonfinite:
        fill = nonfinite_fill(volume)
        volume = np.where(np.isfinite(volume), volume, volume.dtype.type(fill))
    phases, confidence = classifier.predict(volume, sp, progress=lambda f, m: progress(0.05 + 0.95 * f, m))
    del confidence
    return phases, sha


def _check_memory(volume, params: AnalysisParams, presegmented: bool, downsampled: int) -> int | None:
    """:func:`core.memory.check_memory` for this run (before any other check); the estimate in bytes, or None.

    Only a 3D non-empty array is checked (anything else is refused by the
    validation that follows).  The input is not counted: it is in memory
    already, or memory-mapped (its pages are in the address space already,
    and page cache counts as available memory).
    """
    if not (isinstance(volume, np.ndarray) and volume.ndim == 3 and volume.size):
        return None
    fit = check_memory(volume.shape, volume.dtype, params, presegmented=presegmented, resident_input=True,
                       downsampled=downsampled)
    return fit.needed


def _data_box(volume, fill: dict | None, region=None) -> tuple[slice, slice, slice] | None:
    """Where a scan with a fill outside its field of view holds data: the largest box without the fill
    (:func:`core.phases.data_box`), or None (no fill, or no box of at least 8 voxels a side, as a single slice's
    one)."""
    if fill is None:
        return None
    from .phases.fill import data_box

    box = data_box(volume, fill["value"], region=region)
    if box is None:
        return None
    thin = slice_axis(volume.shape)
    if any(b - a < 8 for ax, (a, b) in enumerate(box) if ax != thin):
        return None
    return tuple(slice(a, b) for a, b in box)


def _refine(volume, phases, params: AnalysisParams, *, presegmented: bool, report: Progress, downsampled: int,
            box: tuple[slice, slice, slice] | None = None, no_data: np.ndarray | None = None):
    """``params.refine`` resolved, the blur reading (:func:`core.seeding.auto_seeding`'s (choice, blur), from the one
    reading that decides the refinement; None where not read), the phases (refined, or ``phases`` itself), what the refinement measured and changed
    (None where it did not run) and what "auto" read (None for another choice).  ``box``: where the blur, noise
    and pure grey values are read (:func:`_data_box`; None: the whole volume); ``no_data``: the packed bits of a
    fill's region, beside which the phases stay as thresholded (:func:`_near_fill`)."""
    if params.refine == "off" or presegmented or params.method != "threshold":
        return "off", None, phases, None, None
    mv, mp = (volume[box], phases[box]) if box is not None else (volume, phases)  # views
    from .phases import phase_references
    from .phases.forward import AUTO_NOISE, BETA, SWEEPS, refine_phases
    from .seeding import _auto_choice, _estimate_blur, auto_seeding, estimate_noise, estimate_relative_noise

    read = auto = noise = None
    refine = params.refine
    if refine == "auto":
        report(0.3, "measuring the blur and noise (phase refinement)")
        read = auto_seeding(mv, mp)
        blur = read[1]
        noise_contrast = None
        if read[0] == "deconvolved":
            refine = "on"
        else:
            noise = estimate_noise(mv, mp)
            noise_contrast = estimate_relative_noise(mv, mp, noise=noise)
            # a blur read as 0 (edges as sharp as the reading resolves) gives the refinement no model to refine by
            sure = np.isfinite(blur) and blur > 0 and np.isfinite(noise_contrast)
            refine = "nmc" if sure and noise_contrast >= AUTO_NOISE else "off"
        refused = _memory_refusal(volume, replace(params, refine=refine), downsampled) if refine != "off" else None
        if refused is not None:
            warnings.warn(f"The phases would be refined against the scan's blur and noise, but that does not fit "
                          f"in memory ({refused}); they are left as thresholded.", stacklevel=4)
            refine = "off"
        auto = {"blur_voxels": float(blur), "noise_contrast": None if noise_contrast is None else float(noise_contrast),
                "refine": refine}
        if refine == "off":
            return "off", read, phases, None, auto
    else:
        blur, edges = _estimate_blur(mv, mp)
        read = (_auto_choice(blur, edges, mp), blur)  # the seeding's "auto" decides on this reading too
        if not np.isfinite(blur):
            warnings.warn("The blur could not be measured on this scan (too few pore-NMC edges), so the phases "
                          "were not refined.", stacklevel=4)  # run's caller (run -> _run -> here)
            return "off", None, phases, None, None
        if blur <= 0:
            warnings.warn("The scan's pore-NMC edges are as sharp as its blur can be read (blur 0 voxel), so the "
                          "phases were not refined: there is no blur to refine them against.", stacklevel=4)
            return "off", read, phases, None, None
    report(0.32, f"refining the phases (blur {blur:.2f} voxel" + (", NMC surfaces only)" if refine == "nmc" else ")"))
    if noise is None:
        noise = estimate_noise(mv, mp)
    refs = phase_references(mv, mp)
    del mv, mp
    near = kept = None
    if no_data is not None:  # the scan beside a fill was blurred with material the model does not see there
        near = _near_fill(no_data, phases.shape, blur)
        kept = phases.reshape(-1)[near]
    # the thresholded phases are refined in place: the caller keeps only the refined ones (a byte a voxel less)
    new, info = refine_phases(volume, phases, blur=blur, noise=noise, references=refs, beta=BETA, sweeps=SWEEPS,
                              moves="nmc" if refine == "nmc" else "all", overwrite=True)
    if near is not None:
        info = {**info, "kept_beside_fill_voxels": int(np.count_nonzero(new.reshape(-1)[near] != kept))}
        new.reshape(-1)[near] = kept
    return refine, read, new, info, auto


def _near_fill(no_data: np.ndarray, shape, blur: float) -> np.ndarray:
    """The flat indices of the voxels within ``ceil(3 blur)`` face steps of a fill (``no_data``: its packed bits,
    :func:`core.phases.fill_region`), the fill's own left out.

    The refinement models each voxel as the blurred phases around it; beside the fill, the scan was blurred with
    the material beyond the field of view, which the model reads as pore (the fill's phase): on a sphere packing
    (blur 1.2 voxel, 48×128², a circular field of view) the phases within 6 voxels of the fill matched the truth
    at 0.862 / 0.861 refined up to it, 0.922 / 0.917 kept as thresholded there, 0.934 / 0.934 without the fill
    (``bench/RESULTS.md`` fill_effect).  There the phases stay as thresholded.
    """
    region = np.unpackbits(no_data, count=int(np.prod(shape))).view(bool).reshape(shape)
    reach = max(1, int(np.ceil(3.0 * blur)))
    thin = slice_axis(shape)  # a single slice: in its plane
    structure = face_structure(() if thin is None else (thin,))
    near = ndi.binary_dilation(region, structure, iterations=reach)
    near &= ~region
    return np.flatnonzero(near)


def _resolve_seeding(volume, phases, params: AnalysisParams, *, presegmented: bool, cue, coarsen, downsampled: int,
                     report: Progress, read=None, box: tuple[slice, slice, slice] | None = None
                     ) -> tuple[str, float | None]:
    """``params.seeding`` with "auto" resolved (:func:`core.seeding.auto_seeding`), and the blur it read (or None).

    "auto" is "phases" without a greyscale (presegmented), for the network's
    particles and for a coarsened separation.  Where it picks "deconvolved"
    but that path's estimated peak does not fit the available memory
    (:func:`core.memory.check_memory`), it warns and seeds on the phases.  ``read``: the (choice, blur) of
    :func:`core.seeding.auto_seeding` where the phase refinement already read it (on the phases before refining).

    The blur returned is the one the deconvolved seeding undoes (:func:`_particles`): for "deconvolved", chosen
    or given, the reading on the phases as segmented (``read``, else read here), so that a run with "auto" and
    its replay with the choice written out seed alike; None for the other seedings.  ``box``: where the blur is
    read (:func:`_data_box`; None: the whole volume).
    """
    mv, mp = (volume[box], phases[box]) if box is not None else (volume, phases)  # views
    if params.seeding == "deconvolved" and not presegmented and cue is None and coarsen == 1:
        from .seeding import _estimate_blur

        return "deconvolved", read[1] if read is not None else _estimate_blur(mv, mp)[0]
    if params.seeding != "auto":
        return params.seeding, None
    if presegmented or cue is not None or params.particles != "watershed" or coarsen != 1:
        return "phases", None
    from .seeding import AUTO_BLUR, auto_seeding

    if read is None:
        report(0.35, "measuring the blur (seeding)")
    seeding, blur = read if read is not None else auto_seeding(mv, mp)
    refused = _memory_refusal(volume, replace(params, seeding=seeding), downsampled) if seeding == "deconvolved" \
        else None
    if refused is not None:
        warnings.warn(f"The blur ({blur:.2f} voxel) is at least {AUTO_BLUR} voxel, where the particles are "
                      f"better seeded on a deconvolved mask, but that does not fit in memory ({refused}); they are "
                      "seeded on the phases.", stacklevel=4)  # run's caller (run -> _run -> here)
        seeding = "phases"
    return seeding, blur


def _memory_refusal(volume, params: AnalysisParams, downsampled: int) -> MemoryBudgetError | None:
    """Why a run with ``params`` (a choice "auto" made) does not fit in memory: the error of
    :func:`core.memory.check_memory`, or None where it fits or ``volume`` is not an in-memory array."""
    if not isinstance(volume, np.ndarray):
        return None
    try:
        check_memory(volume.shape, volume.dtype, params, presegmented=False, resident_input=True,
                     downsampled=downsampled)
    except MemoryBudgetError as exc:
        return exc
    return None


def _particles(phases: np.ndarray, cue, sp, params: AnalysisParams, report: Progress, progress: Progress, *,
               volume: np.ndarray | None = None, nonfinite: int = 0,
               side: SideWork | None = None, blur: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Particle labels: the seeded watershed of the network's cue when there is one, else the crack-aware watershed.

    ``side`` is handed to the crack-aware watershed on the phases (started when its flood starts), or to the
    regularised seeding (started when its extension to every NMC voxel turns single-threaded).

    Also the packed ``outside_reach`` of the NMC where the crack-aware watershed computed it (else None),
    see :func:`core.particles._separate_particles`.

    With ``params.seeding`` "regularised" or "deconvolved" the watershed seeds and floods on the regularised
    NMC mask of the greyscale ``volume`` (:func:`core.seeding.regularised_particles`; non-finite voxels, counted in
    ``nonfinite``, given the median grey value in a filled copy).  ``blur``: the blur (voxels) "auto" read on
    this scan (:func:`_resolve_seeding`), which the deconvolved seeding undoes (:func:`core.seeding.deconv_blur`)
    instead of measuring it again on the refined phases (the same reading, or one bin of its histogram, 1.5 %,
    above it: 12 sphere packings, blur 0.9 and 1.2 voxel, noise 0.05 and 0.10, radius 5 / 7 / 14 voxels, 112³,
    scratch runs of session 26); None: measured there.
    """
    if cue is None and params.seeding != "phases":
        from .seeding import _regularised_particles, deconv_blur

        if nonfinite:
            volume = np.where(np.isfinite(volume), volume, volume.dtype.type(nonfinite_fill(volume)))
        # the crack test of the seeding mask computes the NMC's outside reach: handed on to the table, as below
        deconvolved = params.seeding == "deconvolved"
        return _regularised_particles(volume, phases, sp, params.separation, progress=progress,
                                      deconvolved=deconvolved, keep_outside=True, side=side,
                                      blur=deconv_blur(blur) if deconvolved and blur is not None else None)
    if cue is None:
        return _separate_particles(phases, sp, params.separation, progress=progress, keep_outside=True, side=side)
    from .nn.infer import instances_from_cue

    report(0.6, "particles from the network's cue")
    return instances_from_cue(phases, cue, sp, h=params.model.h, merge_ratio=params.separation.merge_ratio,
                              min_volume_um3=params.separation.min_volume_um3), None


def resolve_coarsen(phases, spacing, coarsen) -> int:
    """The factor of ``coarsen``: a number as it is; ``"auto"``: :func:`core.coarse.auto_factor` of the estimate.

    The estimate is :func:`core.chunked.estimate_max_diameter` of ``phases``
    (a strided copy of at most 8 M voxels, computed in this thread).
    """
    from .coarse import auto_factor, check_factor

    coarsen = check_factor(coarsen, "coarsen")
    if coarsen != "auto":
        return coarsen
    import dask
    import dask.array as da

    from .chunked.particles import estimate_max_diameter

    with dask.config.set(scheduler="sync"):
        d = estimate_max_diameter(da.from_array(np.asarray(phases), chunks=256), spacing)
    return auto_factor(d, spacing)


def _coarse_particles(phases: np.ndarray, sp, separation: SeparationParams, factor: int,
                      report: Progress) -> tuple[np.ndarray, int]:
    """Labels of the coarse-grid separation (:func:`core.coarse.separate_coarse`) and its unlabelled NMC voxels."""
    from .coarse import separate_coarse

    report(0.4, f"particles on a grid {factor}× coarser")
    res = separate_coarse(phases, sp, separation, factor)
    return res.labels, res.unlabelled


def _provenance(volume: np.ndarray, params: AnalysisParams, resolved: AnalysisParams, sp, table: pd.DataFrame,
                input_checksum: str, *, presegmented: bool, downsampled: int, side_contrast, weights_sha,
                side_warning: str | None = None,
                timings: dict, classifier_sha: str | None = None) -> dict:
    """What a run records beside its results (see :class:`AnalysisResult`); ``input_checksum``:
    :func:`checksum` of ``volume``."""
    seg = resolved.segment
    blur_used = not presegmented and params.method == "threshold" and seg.partial_volume and seg.pv_sigma is not None
    provenance = {
        "versions": versions(torch=weights_sha is not None),
        "input_checksum": input_checksum,
        "input_shape": list(volume.shape),
        "input_dtype": str(volume.dtype),
        "spacing_um": list(sp),
        "downsampled": downsampled,
        "presegmented": presegmented,
        "separator_side_detected": resolved.separator_side if side_contrast is not None else None,
        "separator_side_contrast": side_contrast,
        "separator_side_warning": side_warning,  # metrics.side_warning's sentence where "auto" read no clear side
        "n_particles": int(len(table)),
        "pv_sigma_origin": sigma_origin(seg.pv_sigma, params.segment.pv_sigma is not None) if blur_used else None,
        "phases_from": "presegmented" if presegmented else params.method,
        "particles_from": params.particles,
        "timings_s": timings,
    }
    if "depth_extent" in table.attrs:  # the electrode's first and last slice along its thickness axis
        provenance["depth_extent"] = [int(v) for v in table.attrs["depth_extent"]]
    if weights_sha:
        provenance["model_weights_sha256"] = weights_sha
    if classifier_sha:
        provenance["classifier"] = resolved.classifier
        provenance["classifier_pairs_sha256"] = classifier_sha
    return provenance
