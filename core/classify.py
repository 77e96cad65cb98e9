"""Phases learned from brush strokes: a trainable pixel classifier (ilastik / Weka style).

The scientist paints a few strokes per phase on the scan (the *scribbles*);
every voxel gets the features of :func:`skimage.feature.multiscale_basic_features`
(Gaussian-smoothed intensity, gradient magnitude and Hessian eigenvalues at
several scales, 3D on a volume and 2D on a single slice) and a scikit-learn
tree ensemble (:class:`~sklearn.ensemble.ExtraTreesClassifier` by default,
:class:`~sklearn.ensemble.RandomForestClassifier` on request; seeded,
class-balanced) trained on the painted voxels predicts the phase of every
voxel, slab by slab.

The artefact kept on disk is the training pairs (images + scribbles + the
parameters), never a pickled model: :func:`load_classifier` retrains from them,
deterministically (the same pairs and seed give identical predictions).

Scribble codes: 0 pore, 1 CBD, 2 NMC (the phase codes of :mod:`core.codes`),
255 = not painted.

Nothing here imports streamlit.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ._validate import check_grey_range, normalize_spacing

__all__ = [
    "DEFAULT_SIGMAS_VOXELS", "LEARNERS", "PREVIEW_TREES", "UNPAINTED", "ClassifierParams", "PhaseClassifier", "features",
    "halo", "load_classifier", "normalize_intensity", "save_classifier", "save_training", "slice_range", "train",
    "volume_range", "NARROW_SHARE",
]

#: Scribble value of a voxel that is not painted.
UNPAINTED = 255
#: Names of the files of a classifier folder (:func:`save_classifier`).
META_FILE = "classifier.json"
PAIRS_FILE = "pairs.npz"
_FORMAT = "core-phase-classifier"
#: Version 2 records ``learner`` and ``max_features`` (version 1 folders, written before they existed, were
#: random forests with ``max_features`` √F: :data:`_V1_PARAMS`, so they load to the same classifier as before).
#: Version 3 lets the feature scales be None (:data:`DEFAULT_SIGMAS_VOXELS`); a version-1 or -2 folder gives them
#: in µm (:data:`_V2_SIGMAS` where it leaves them out, the defaults then).
#: Version 4 scales a narrow slice by its volume's range (:data:`NARROW_SHARE`, :func:`slice_range`) and records each
#: pair's ``reference_range``; a classifier of an older folder scales every slice by its own range, as it did.
_FORMAT_VERSION = 4
_KNOWN_VERSIONS = (1, 2, 3, 4)
#: The learner settings of a version-1 folder (the defaults before version 2).
_V1_PARAMS = {"learner": "random-forest", "max_features": None}
#: The feature scales of a version-1 or -2 folder that does not give them (the defaults before version 3), µm.
_V2_SIGMAS = {"sigma_min_um": 0.5, "sigma_max_um": 8.0}
#: Smallest and largest feature scale, voxels of the in-plane grid, where ``ClassifierParams`` gives none in µm.
DEFAULT_SIGMAS_VOXELS = (0.5, 8.0)
#: Learners: scikit-learn's random forest (best split among ``max_features`` features per node) and extra trees
#: (Geurts et al. 2006: a random threshold per candidate feature).
LEARNERS = ("random-forest", "extra-trees")
_N_PHASES = 3
_PHASE_NAMES = ("pore", "CBD", "NMC")
#: Percentiles mapped to 0 and 1 by :func:`normalize_intensity`.
_PCT = (0.5, 99.5)
#: A classifier trained on single slices scales each slice by its own 0.5 / 99.5 percentiles, unless that range is
#: narrower than this share of its volume's (:func:`slice_range`): a slice beyond the electrode holds pore and noise
#: only, and its own range would stretch the noise over the whole scale (on the cycled-1C demo at 128³, its four
#: empty slices read 91 % CBD and gave three particles; their range is 0.21 of the volume's, a slice through the
#: electrode's rough surface at 5 % NMC already spans the phases).
NARROW_SHARE = 0.5
#: At most this many voxels are sampled for the percentiles of a big volume.
_PCT_SAMPLE = 4_000_000
#: Feature bytes of one slab (with its halo) that :meth:`PhaseClassifier.predict` aims at when ``slab=None``.
_SLAB_BYTES = 256 * 2**20
#: Rows given to the forest at a time.
_ROWS = 65_536
#: Trees of :meth:`ClassifierParams.preview` (the dashboard's per-stroke preview; bench/paint_preview_latency.py).
PREVIEW_TREES = 30


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ClassifierParams:
    """How features are computed and the forest is grown.

    Attributes
    ----------
    sigma_min_um, sigma_max_um : float or None, µm
        Smallest and largest Gaussian scale of the features, converted to
        voxels with the in-plane voxel size (the mean of the y and x spacing;
        :func:`skimage.feature.multiscale_basic_features` takes one isotropic
        scale in voxels).  None (the default): that end of
        :data:`DEFAULT_SIGMAS_VOXELS`, 0.5 and 8 voxels, whatever the voxel
        size: the features follow the image's resolution (its blur, noise
        and texture are in voxels), as ilastik's and Weka's scales do.  The
        defaults were 0.5 and 8 µm before version 3 of the classifier folder:
        on the demo electrodes (0.4 µm voxels: 1.25-20 voxels) the voxel
        scales gave a mean per-phase IoU of 0.70-0.89 against 0.62-0.84
        (+0.04 to +0.07 on each), and on the real nano-CT slices of
        acquisition B the µm scales lost 0.05 at a voxel size of 0.1 µm
        against 1 µm (0.506 against 0.554; bench/RESULTS.md classifier_scales).
    num_sigma : int or None
        Number of scales from min to max (log-spaced); None: powers of 2 from
        the smallest (skimage's default).
    intensity, edges, texture : bool
        Feature families: smoothed intensity, gradient magnitude (Sobel) and
        Hessian eigenvalues, at each scale.  At least one.
    n_estimators : int
        Trees of the forest.
    max_depth : int or None
        Depth limit of each tree (None: unlimited).
    learner : {"extra-trees", "random-forest"}
        The tree ensemble: :class:`~sklearn.ensemble.ExtraTreesClassifier`
        (default) or :class:`~sklearn.ensemble.RandomForestClassifier`, both
        class-balanced.
    max_features : int or None
        Features drawn at each split (None: √F, scikit-learn's default for
        classifiers).  The default, extra trees with one feature per split
        (Geurts et al.'s totally randomised trees), generalised best from
        strokes inside the phases of one slice to the other slices, chosen
        leave-one-acquisition-out on the real nano-CT slices
        (``bench/classifier_loao.py``): strokes are a few clustered patches,
        and a smoother learner follows them less closely.  Before version 2 of
        the classifier folder the learner was a random forest with √F.
    seed : int
        ``random_state`` of the forest: the same pairs and seed give the same classifier.
    n_jobs : int
        Threads used to train and to predict (results do not depend on it).
    """

    sigma_min_um: float | None = None
    sigma_max_um: float | None = None
    num_sigma: int | None = None
    intensity: bool = True
    edges: bool = True
    texture: bool = True
    n_estimators: int = 100
    max_depth: int | None = 12
    learner: str = "extra-trees"
    max_features: int | None = 1
    seed: int = 0
    n_jobs: int = 2

    def __post_init__(self):
        _validate_params(self)

    def sigmas_vox(self, spacing) -> tuple[float, float]:
        """``(sigma_min, sigma_max)`` in voxels for a voxel size ``spacing`` ((3,) float, µm).

        Raises ValueError where one end is given in µm and the other left to
        :data:`DEFAULT_SIGMAS_VOXELS` and, at this voxel size, the largest falls below the smallest.
        """
        sp = normalize_spacing(spacing)
        inplane = (sp[1] + sp[2]) / 2
        lo = DEFAULT_SIGMAS_VOXELS[0] if self.sigma_min_um is None else self.sigma_min_um / inplane
        hi = DEFAULT_SIGMAS_VOXELS[1] if self.sigma_max_um is None else self.sigma_max_um / inplane
        if hi < lo:
            raise ValueError(f"the largest feature scale ({hi:.3g} voxel) is below the smallest ({lo:.3g} voxel) at a "
                             f"voxel size of {inplane:g} µm; give both sigma_min_um and sigma_max_um")
        return lo, hi

    def preview(self, trees: int = PREVIEW_TREES) -> ClassifierParams:
        """These parameters with at most ``trees`` trees: the light learner of the dashboard's preview.

        The features are the same, and so are the trees kept: scikit-learn draws
        each tree's seed in turn from ``seed``, so a forest of ``trees`` trees is
        the first ``trees`` trees of the full forest (the preview averages fewer
        of the full classifier's trees; it trains and predicts in about
        ``trees / n_estimators`` of the time).
        """
        _whole(trees, "trees", 1, 2000)
        return replace(self, n_estimators=min(self.n_estimators, int(trees)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d) -> ClassifierParams:
        """Parameters from :meth:`to_dict`'s form; unknown keys are refused."""
        if not isinstance(d, dict):
            raise TypeError(f"classifier parameters must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown classifier parameter {unknown[0]!r}")
        return cls(**d)


def _whole(value, name: str, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        span = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValueError(f"{name} must be {span}, got {value}")


def _validate_params(p: ClassifierParams) -> None:
    for name in ("sigma_min_um", "sigma_max_um"):
        v = getattr(p, name)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a number of µm or None, got {v!r}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0 µm, got {v}")
    if p.sigma_min_um is not None and p.sigma_max_um is not None and p.sigma_max_um < p.sigma_min_um:
        raise ValueError(f"sigma_max_um ({p.sigma_max_um}) must be at least sigma_min_um ({p.sigma_min_um})")
    if p.num_sigma is not None:
        _whole(p.num_sigma, "num_sigma", 1, 32)
    for name in ("intensity", "edges", "texture"):
        if not isinstance(getattr(p, name), bool):
            raise TypeError(f"{name} must be True or False, got {getattr(p, name)!r}")
    if not (p.intensity or p.edges or p.texture):
        raise ValueError("at least one feature family (intensity, edges, texture) must be on")
    _whole(p.n_estimators, "n_estimators", 1, 2000)
    if p.max_depth is not None:
        _whole(p.max_depth, "max_depth", 1, 100)
    if p.learner not in LEARNERS:
        raise ValueError(f"learner must be one of {', '.join(LEARNERS)}, got {p.learner!r}")
    if p.max_features is not None:
        _whole(p.max_features, "max_features", 1, 10_000)
    _whole(p.seed, "seed", 0, 2**32 - 1)
    _whole(p.n_jobs, "n_jobs", 1, 256)


# --------------------------------------------------------------------------- features


def _as_volume(volume, name: str = "volume") -> np.ndarray:
    a = np.asarray(volume)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be a 2D image or a (Z, Y, X) volume, got shape {a.shape}")
    if a.dtype.kind not in "uif" or a.dtype == np.bool_:
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    if min(a.shape) < 1:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    return a


def intensity_range(volume) -> tuple[float, float]:
    """The 0.5 and 99.5 percentiles of ``volume`` (a strided sample of at most ~4 M voxels of a big one)."""
    a = _as_volume(volume)
    step = max(1, math.ceil((a.size / _PCT_SAMPLE) ** (1 / 3)))
    sample = np.asarray(a[::step, ::step, ::step], dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        raise ValueError("the volume holds no finite value")
    lo, hi = np.percentile(sample, _PCT)
    return float(lo), float(hi)


def volume_range(volume) -> tuple[float, float]:
    """:func:`intensity_range` of a volume held in memory (or memory-mapped); of one read lazily (an array-like
    read by contiguous boxes, :class:`core.chunked.LazyArray`), the same percentiles of up to 16 z planes spread
    over it, each strided in y and x.  The reference by which a single slice of it is scaled (:func:`slice_range`)."""
    if isinstance(volume, np.ndarray) or np.ndim(volume) < 3:
        return intensity_range(volume)
    nz, ny, nx = (int(n) for n in volume.shape)
    zs = np.unique(np.linspace(0, nz - 1, min(nz, 16)).round().astype(int))
    step = max(1, math.ceil((ny * nx * len(zs) / _PCT_SAMPLE) ** 0.5))
    planes = [np.asarray(volume[int(z):int(z) + 1, :, :])[:, ::step, ::step] for z in zs]
    return intensity_range(np.concatenate(planes))


def slice_range(image, reference: tuple[float, float] | None = None) -> tuple[float, float]:
    """The range a single slice is scaled by: its own (:func:`intensity_range`), or ``reference`` (its volume's)
    where its own is narrower than :data:`NARROW_SHARE` of it (a slice of one material: its noise is not stretched
    over the phases' scale).  ``reference`` None: its own."""
    own = intensity_range(image)
    if reference is None:
        return own
    lo, hi = (float(v) for v in reference)
    return (lo, hi) if own[1] - own[0] < NARROW_SHARE * (hi - lo) else own


def normalize_intensity(volume, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """``volume`` as float32 with its 0.5 / 99.5 percentiles mapped to 0 / 1 (not clipped).

    Several images of one sample (or of several scans) then share one feature scale.
    """
    a = _as_volume(volume)
    lo, hi = intensity_range(a) if value_range is None else value_range
    scale = 1.0 / (hi - lo) if hi > lo else 1.0
    out = (np.asarray(a, dtype=np.float32) - np.float32(lo)) * np.float32(scale)
    return np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)


def halo(params: ClassifierParams, spacing) -> int:
    """Voxels of context a slab needs along z so that its features equal the whole volume's.

    ``ceil(4 * sigma_max)`` (the Gaussian's reach, skimage truncates at 4 σ)
    plus 3 for the Sobel filter and the two gradients of the Hessian.
    """
    return int(math.ceil(4 * params.sigmas_vox(spacing)[1])) + 3


def features(volume, spacing, params: ClassifierParams | None = None, *, normalized: bool = False,
             reference: tuple[float, float] | None = None) -> np.ndarray:
    """Per-voxel features of ``volume``.

    Parameters
    ----------
    volume : (Z, Y, X) or (Y, X) ndarray
        Greyscale.  A volume with Z == 1 (or a 2D image) gets 2D features.
    spacing : float or (3,) float, µm
        Voxel size (the feature scales are given in µm).
    params : ClassifierParams, optional
    normalized : bool
        ``volume`` is already :func:`normalize_intensity`'s output (else it is normalised here).
    reference : (float, float), optional
        For a single slice: the range of the volume it was cut from; the slice is scaled by
        :func:`slice_range` (its own range unless that is narrow), as a classifier of format version 4 scales it.

    Returns
    -------
    (Z, Y, X, F) float32 ndarray
    """
    params = params or ClassifierParams()
    a = _as_volume(volume)
    rng = slice_range(a, reference) if reference is not None and a.shape[0] == 1 else None
    img = a.astype(np.float32, copy=False) if normalized else normalize_intensity(a, rng)
    return _features(img, spacing, params)


def _features(img: np.ndarray, spacing, params: ClassifierParams) -> np.ndarray:
    from skimage.feature import multiscale_basic_features

    smin, smax = params.sigmas_vox(spacing)
    kw = dict(intensity=params.intensity, edges=params.edges, texture=params.texture, sigma_min=smin,
              sigma_max=smax, num_sigma=params.num_sigma, channel_axis=None, workers=params.n_jobs)
    if img.shape[0] == 1:
        return multiscale_basic_features(img[0], **kw).astype(np.float32, copy=False)[None]
    return multiscale_basic_features(img, **kw).astype(np.float32, copy=False)


def _n_features(params: ClassifierParams, spacing, ndim: int) -> int:
    smin, smax = params.sigmas_vox(spacing)
    n_sig = params.num_sigma or int(np.log2(smax) - np.log2(smin) + 1)
    per = int(params.intensity) + int(params.edges) + (ndim if params.texture else 0)
    return n_sig * per


def _slabs(volume: np.ndarray, spacing, params: ClassifierParams, slab: int | None, reference=None):
    """Yield ``(z0, z1, features of volume[z0:z1])``, each computed on the slab plus a halo along z.

    The intensities are normalised with the range of the whole volume
    (:func:`intensity_range`), one slab at a time: no whole-volume float copy; a single slice with ``reference``
    by :func:`slice_range`.
    """
    value_range = slice_range(volume, reference) if volume.shape[0] == 1 else intensity_range(volume)
    nz = volume.shape[0]
    if nz == 1:
        yield 0, 1, _features(normalize_intensity(volume, value_range), spacing, params)
        return
    h = halo(params, spacing)
    if slab is None:
        per_slice = volume.shape[1] * volume.shape[2] * 4 * (_n_features(params, spacing, 3) + 4)
        slab = max(1, _SLAB_BYTES // per_slice - 2 * h)
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        a, b = max(0, z0 - h), min(nz, z1 + h)
        f = _features(normalize_intensity(volume[a:b], value_range), spacing, params)
        yield z0, z1, f[z0 - a:z1 - a]


# --------------------------------------------------------------------------- training


@dataclass(frozen=True, eq=False)
class TrainingPair:
    """One painted image: the image, its scribbles and its voxel size.

    Attributes
    ----------
    image : (Z, Y, X) ndarray
        Greyscale, as read.
    scribbles : (Z, Y, X) uint8
        0 pore, 1 CBD, 2 NMC, 255 not painted.
    spacing : (3,) float, µm
    reference : (float, float) or None
        A single slice's volume range (:func:`slice_range`; format version 4), or None: scaled by its own.
    """

    image: np.ndarray
    scribbles: np.ndarray
    spacing: tuple[float, float, float]
    reference: tuple[float, float] | None = None


def _check_scribbles(scribbles, shape: tuple[int, ...], where: str) -> np.ndarray:
    s = np.asarray(scribbles)
    if s.ndim == 2:
        s = s[None]
    if s.shape != shape:
        raise ValueError(f"{where}: the scribbles have shape {s.shape}, the image {shape}; they must match")
    if s.dtype.kind not in "ui":
        raise TypeError(f"{where}: the scribbles must be integers (uint8: 0 pore, 1 CBD, 2 NMC, 255 not painted), "
                        f"got dtype {s.dtype}")
    values = np.unique(s)
    bad = [int(v) for v in values if v not in (0, 1, 2, UNPAINTED)]
    if bad:
        raise ValueError(f"{where}: the scribbles hold the value {bad[0]}; only 0 pore, 1 CBD, 2 NMC and 255 "
                         "(not painted) are allowed")
    return s.astype(np.uint8, copy=False)


def _pairs(images, scribbles, spacing, references=None) -> list[TrainingPair]:
    if isinstance(images, np.ndarray) or not isinstance(images, Sequence):
        images, scribbles = [images], [scribbles]
    if not isinstance(scribbles, Sequence) or isinstance(scribbles, np.ndarray):
        scribbles = [scribbles]
    if len(images) == 0:
        raise ValueError("no training image given")
    if len(images) != len(scribbles):
        raise ValueError(f"{len(images)} images but {len(scribbles)} scribble arrays; give one per image")
    if spacing is None or np.ndim(spacing) == 0 or (np.ndim(spacing) == 1 and not isinstance(spacing[0], Sequence)
                                                    and not isinstance(spacing[0], np.ndarray)):
        spacings = [spacing] * len(images)
    else:
        spacings = list(spacing)
        if len(spacings) != len(images):
            raise ValueError(f"{len(images)} images but {len(spacings)} voxel sizes; give one, or one per image")
    refs = [None] * len(images) if references is None else list(references)
    if len(refs) != len(images):
        raise ValueError(f"{len(images)} images but {len(refs)} reference ranges; give one per image")
    out = []
    for i, (im, sc, sp, ref) in enumerate(zip(images, scribbles, spacings, refs)):
        where = f"training image {i + 1}"
        a = _as_volume(im, where)
        out.append(TrainingPair(a, _check_scribbles(sc, a.shape, where),
                                normalize_spacing(1.0 if sp is None else sp), _check_reference(ref, where)))
    return out


def _check_reference(ref, where: str) -> tuple[float, float] | None:
    return check_grey_range(ref, f"{where}: the reference range")


def _training_rows(pairs: Sequence[TrainingPair], params: ClassifierParams, feats=None):
    xs, ys = [], []
    for k, pair in enumerate(pairs):
        slabs = (_slabs(pair.image, pair.spacing, params, None, pair.reference) if feats is None
                 else [(0, pair.image.shape[0], feats[k])])
        for z0, z1, f in slabs:
            s = pair.scribbles[z0:z1]
            m = s != UNPAINTED
            if m.any():
                xs.append(f[m])
                ys.append(s[m])
    x = np.concatenate(xs) if xs else np.zeros((0, 1), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.uint8)
    found = np.unique(y)
    if found.size < 2:
        names = ", ".join(_PHASE_NAMES[int(v)] for v in found) or "none"
        raise ValueError(f"the scribbles paint fewer than 2 phases (painted: {names}); paint at least two of pore, "
                         "CBD and NMC")
    return x, y


def train(images, scribbles, spacing=None, params: ClassifierParams | None = None, *,
          features=None, references=None) -> PhaseClassifier:
    """Train a phase classifier on painted voxels.

    Parameters
    ----------
    images : (Z, Y, X) or (Y, X) ndarray, or sequence of them
        Greyscale images; each is normalised on its own (:func:`normalize_intensity`).
    scribbles : ndarray or sequence of ndarray
        One per image, of its shape: 0 pore, 1 CBD, 2 NMC, 255 not painted.
    spacing : float or (3,) float, µm, or a sequence of them (one per image), optional
        Voxel sizes (default 1 µm).
    params : ClassifierParams, optional
    features : (Z, Y, X, F) float32 ndarray, or a sequence of them (one per image), optional
        The images' :func:`features` with these ``params`` and voxel sizes, when
        already computed (the dashboard keeps those of the painted slices);
        the classifier is then the same as without them.
    references : sequence of (float, float) or None, optional
        One per image: for a single slice, the range of the volume it was cut from (:func:`intensity_range` of
        it), by which a narrow slice is scaled (:func:`slice_range`); None scales each by its own.

    Returns
    -------
    PhaseClassifier
        Holds the pairs (for :func:`save_classifier`) and the fitted forest.

    Raises
    ------
    ValueError, TypeError
        Scribbles of another shape, values other than 0/1/2/255, fewer than two phases painted.
    """
    params = params or ClassifierParams()
    if not isinstance(params, ClassifierParams):
        raise TypeError(f"params must be ClassifierParams, got {type(params).__name__}")
    pairs = _pairs(images, scribbles, spacing, references)
    feats = None if features is None else _check_features(features, pairs)
    return _fit(tuple(pairs), params, feats)


def _check_features(features, pairs: Sequence[TrainingPair]) -> list[np.ndarray]:
    feats = [features] if isinstance(features, np.ndarray) else list(features)
    if len(feats) != len(pairs):
        raise ValueError(f"{len(pairs)} images but {len(feats)} feature arrays; give one per image")
    out = []
    for i, (f, pair) in enumerate(zip(feats, pairs)):
        f = np.asarray(f)
        if f.ndim == 3 and pair.image.shape[0] == 1:
            f = f[None]
        if f.ndim != 4 or f.shape[:3] != pair.image.shape:
            raise ValueError(f"training image {i + 1}: the features have shape {f.shape}, the image "
                             f"{pair.image.shape}; they must be (Z, Y, X, F) of the image's shape")
        out.append(f)
    return out


def _fit(pairs: tuple[TrainingPair, ...], params: ClassifierParams, feats=None, version: int = _FORMAT_VERSION) -> PhaseClassifier:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    ndims = {2 if p.image.shape[0] == 1 else 3 for p in pairs}
    if len(ndims) > 1:
        raise ValueError("the training images mix single slices (2D features) and volumes (3D features); train "
                         "on one kind")
    x, y = _training_rows(pairs, params, feats)
    learner = ExtraTreesClassifier if params.learner == "extra-trees" else RandomForestClassifier
    forest = learner(n_estimators=params.n_estimators, max_depth=params.max_depth,
                     max_features="sqrt" if params.max_features is None else min(params.max_features, x.shape[1]),
                     class_weight="balanced", random_state=params.seed, n_jobs=params.n_jobs)
    forest.fit(x, y)
    counts = np.bincount(y, minlength=_N_PHASES)
    return PhaseClassifier(params=params, pairs=pairs, ndim=ndims.pop(), painted=tuple(int(c) for c in counts),
                           version=version, _forest=forest)


# --------------------------------------------------------------------------- prediction


@dataclass(frozen=True, eq=False)
class PhaseClassifier:
    """A trained classifier and the pairs it was trained on.

    Attributes
    ----------
    params : ClassifierParams
    pairs : tuple of TrainingPair
    ndim : {2, 3}
        2: trained on single slices (2D features; a volume is classified slice by slice along z); 3: on volumes.
    painted : (3,) int
        Painted voxels per phase (pore, CBD, NMC).
    version : int
        The folder format it follows: from 4 on, a volume's narrow slices are scaled by its range
        (:func:`slice_range`); before, each slice by its own.
    """

    params: ClassifierParams
    pairs: tuple
    ndim: int
    painted: tuple
    version: int = _FORMAT_VERSION
    _forest: object = field(repr=False, default=None)

    @property
    def classes(self) -> np.ndarray:
        """Phase codes the forest knows (those painted), in its column order."""
        return np.asarray(self._forest.classes_, dtype=np.uint8)

    def _proba(self, x: np.ndarray) -> np.ndarray:
        # the forest sums its trees in a fixed order when given one thread; threads split rows instead, so the
        # result of a voxel never depends on the thread count or on which slab it came in
        forest = self._forest
        forest.n_jobs = 1
        chunks = [x[i:i + _ROWS] for i in range(0, len(x), _ROWS)]
        if self.params.n_jobs == 1 or len(chunks) == 1:
            return np.concatenate([forest.predict_proba(c) for c in chunks]) if chunks else np.zeros((0, 1))
        from sklearn.utils.parallel import Parallel, delayed

        parts = Parallel(n_jobs=self.params.n_jobs, prefer="threads")(delayed(forest.predict_proba)(c) for c in chunks)
        return np.concatenate(parts)

    def predict(self, volume, spacing=None, *, progress: Callable[[float, str], None] | None = None,
                slab: int | None = None, features: np.ndarray | None = None,
                reference: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Phases and confidence of every voxel of ``volume``.

        Parameters
        ----------
        volume : (Z, Y, X) or (Y, X) ndarray
            Greyscale (normalised on its own, like the training images).
        spacing : float or (3,) float, µm, optional
            Voxel size (default 1 µm).
        progress : callable(frac, message), optional
        slab : int, optional
            z-slices per slab (default: about 256 MiB of features per slab).
            Each slab's features are computed with a halo of :func:`halo`
            slices, so the result does not depend on ``slab``.  Memory: the
            slab's features (4 B x F per voxel of slab + halo) besides the
            outputs (5 B per voxel); the input is read slab by slab (a memory
            map stays on disk).
        features : (Z, Y, X, F) float32 ndarray, optional
            :func:`features` of ``volume`` with this classifier's parameters
            (of each z-slice on its own for a classifier trained on single
            slices), when already computed: the result is the same.
        reference : (float, float), optional
            A classifier trained on single slices (format version 4): the range of the volume a single slice
            ``volume`` was cut from (:func:`slice_range`; for a volume, its own range is read when not given).

        Returns
        -------
        phases : (Z, Y, X) uint8
            0 pore, 1 CBD, 2 NMC.  A classifier trained on single slices
            (``ndim == 2``) classifies a volume slice by slice along z, each
            z-slice normalised on its own (a narrow one by the volume's range,
            :func:`slice_range`, from format version 4) and with 2D features:
            slice ``z`` is exactly ``predict(volume[z], reference=
            intensity_range(volume))`` (what the dashboard's preview of that
            slice shows).
        confidence : (Z, Y, X) float32
            The largest class probability of each voxel (1 / (classes painted) to 1).
        """
        a = _as_volume(volume)
        if slab is not None:
            _whole(slab, "slab", 1)
        sp = normalize_spacing(1.0 if spacing is None else spacing)
        if self.ndim == 3 and a.shape[0] == 1:
            raise ValueError(f"the classifier was trained on volumes; the input has shape {a.shape}")
        phases = np.empty(a.shape, np.uint8)
        confidence = np.empty(a.shape, np.float32)
        classes = self.classes
        nz = a.shape[0]
        if features is not None:
            features = np.asarray(features)
            if features.ndim != 4 or features.shape[:3] != a.shape:
                raise ValueError(f"the features have shape {features.shape}; they must be (Z, Y, X, F) of the "
                                 f"input's shape {a.shape}")
        narrow = self.ndim == 2 and self.version >= 4  # a narrow slice scaled by its volume's range
        if self.ndim == 2 and nz > 1:  # slice by slice, each exactly as predict(volume[z], reference=...) would
            if narrow and reference is None:
                reference = intensity_range(a)
            for z in range(nz):
                phases[z:z + 1], confidence[z:z + 1] = self.predict(
                    a[z], sp, features=None if features is None else features[z:z + 1], reference=reference)
                if progress is not None:
                    progress((z + 1) / nz, f"classifying slice {z} of {nz}")
            return phases, confidence
        slabs = (_slabs(a, sp, self.params, slab, reference if narrow else None) if features is None
                 else [(0, nz, features)])
        for z0, z1, f in slabs:
            p = self._proba(f.reshape(-1, f.shape[-1]))
            k = np.argmax(p, axis=1)
            phases[z0:z1] = classes[k].reshape(f.shape[:-1])
            confidence[z0:z1] = p[np.arange(len(k)), k].reshape(f.shape[:-1])
            if progress is not None:
                progress(z1 / nz, f"classifying slices {z0}-{z1 - 1} of {nz}")
        return phases, confidence


# --------------------------------------------------------------------------- storage


def save_classifier(path, classifier: PhaseClassifier) -> Path:
    """Write ``classifier`` as a folder: ``classifier.json`` (parameters, voxel sizes) and ``pairs.npz``.

    ``pairs.npz`` holds ``image_K`` and ``scribbles_K`` for each training
    pair K (no Python objects: it loads with ``allow_pickle=False``).  The
    folder is made if needed; the two files are replaced.  Returns the folder.
    """
    return _save(Path(path), classifier.pairs, classifier.params, classifier.version)


def save_training(path, images, scribbles, spacing=None, params: ClassifierParams | None = None, *,
                  references=None) -> Path:
    """Write training pairs as a classifier folder (as :func:`save_classifier` would) without training.

    The arguments are :func:`train`'s, checked the same way (except that
    fewer than two painted phases are refused when the folder is read);
    :func:`load_classifier` of the folder trains the classifier.  Returns the folder.
    """
    params = params or ClassifierParams()
    if not isinstance(params, ClassifierParams):
        raise TypeError(f"params must be ClassifierParams, got {type(params).__name__}")
    pairs = _pairs(images, scribbles, spacing, references)
    if len({2 if p.image.shape[0] == 1 else 3 for p in pairs}) > 1:
        raise ValueError("the training images mix single slices (2D features) and volumes (3D features); train "
                         "on one kind")
    return _save(Path(path), tuple(pairs), params)


def _save(folder: Path, pairs: Sequence[TrainingPair], params: ClassifierParams, version: int = _FORMAT_VERSION) -> Path:
    """The folder of ``pairs`` in format ``version`` (a classifier read from an older folder is written as it was,
    so that it loads to the same classifier)."""
    folder.mkdir(exist_ok=True)
    arrays = {}
    for k, pair in enumerate(pairs):
        arrays[f"image_{k}"] = np.ascontiguousarray(pair.image)
        arrays[f"scribbles_{k}"] = np.ascontiguousarray(pair.scribbles)
    with open(folder / PAIRS_FILE, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    entries = []
    for p in pairs:
        e = {"spacing_um": list(p.spacing), "shape": list(p.image.shape), "dtype": str(p.image.dtype)}
        if version >= 4:
            e["reference_range"] = None if p.reference is None else list(p.reference)
        e["painted"] = [int(c) for c in np.bincount(p.scribbles[p.scribbles != UNPAINTED], minlength=_N_PHASES)]
        entries.append(e)
    meta = {"format": _FORMAT, "version": version, "params": params.to_dict(), "pairs": entries}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


def load_classifier(path) -> PhaseClassifier:
    """Read a folder written by :func:`save_classifier` and retrain from its pairs (deterministic).

    Nothing is unpickled: ``pairs.npz`` is read with ``allow_pickle=False``.

    Raises
    ------
    ValueError
        ``path`` is not such a folder (a file, a pickle, a folder of something else) or its content is damaged.
    FileNotFoundError
        ``path`` does not exist.
    """
    folder = Path(path)
    name = os.fspath(path)
    if not os.path.lexists(folder):
        raise FileNotFoundError(f"no such classifier folder: {name}")
    what = f"{name} is not a classifier folder written by 'python -m core train-classifier' ({META_FILE} + {PAIRS_FILE})"
    if not folder.is_dir() or not (folder / META_FILE).is_file() or not (folder / PAIRS_FILE).is_file():
        raise ValueError(what)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError):
        raise ValueError(f"{what}: its {META_FILE} is not readable JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(what)
    version = meta.get("version")
    if isinstance(version, bool) or version not in _KNOWN_VERSIONS:
        raise ValueError(f"{name}: classifier format version {version!r} is not known here "
                         f"(this reads versions {', '.join(map(str, _KNOWN_VERSIONS))})")
    try:
        stored = meta["params"]
        if version == 1 and isinstance(stored, dict):  # written before the learner was a setting
            if set(_V1_PARAMS) & set(stored):
                raise ValueError(f"a version-1 folder does not set {sorted(set(_V1_PARAMS) & set(stored))[0]!r}")
            stored = {**stored, **_V1_PARAMS}
        if version < 3 and isinstance(stored, dict):  # scales in µm, the defaults of then where left out
            if any(stored.get(k, 0) is None for k in _V2_SIGMAS):
                raise ValueError(f"a version-{version} folder gives its feature scales in µm, not null")
            stored = {**_V2_SIGMAS, **stored}
        params = ClassifierParams.from_dict(stored)
        entries = meta["pairs"]
        if not isinstance(entries, list) or not entries:
            raise ValueError("no training pair")
        with np.load(folder / PAIRS_FILE, allow_pickle=False) as z:
            expected = {f"{kind}_{k}" for k in range(len(entries)) for kind in ("image", "scribbles")}
            if set(z.files) != expected:
                raise ValueError(f"{PAIRS_FILE} holds other arrays than the {len(entries)} pairs listed")
            images = [z[f"image_{k}"] for k in range(len(entries))]
            scribbles = [z[f"scribbles_{k}"] for k in range(len(entries))]
        spacings = [tuple(e["spacing_um"]) for e in entries]
        # (a folder older than version 4 scales every slice by its own range: it records no reference)
        pairs = _pairs(images, scribbles, spacings,
                       [e.get("reference_range") if version >= 4 else None for e in entries])
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:
        msg = str(exc).rstrip(".") if not isinstance(exc, KeyError) else f"missing key {exc}"
        raise ValueError(f"{name}: damaged classifier folder: {msg}") from None
    return _fit(tuple(pairs), params, version=version)
