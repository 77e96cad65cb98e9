"""Training data for :mod:`core.nn`: synthetic 3D electrodes and real labelled slices.

Everything here is seeded by an explicit ``numpy.random.Generator``.

- :func:`random_electrode` draws microstructure and imaging parameters from
  wide ranges (contrast, blur, noise, ring/streak artefacts, cupping, voxel
  size, particle size, crack density) and generates one electrode with
  :func:`core.synth.make_electrode`;
- :func:`instance_targets` turns true particle labels into the network's
  instance targets (centre cue and boundary);
- :func:`load_real_slices` reads the manual 3-phase labels of the nano-CT
  slices (Su et al. 2022) grouped by acquisition;
- :class:`SyntheticPool` and :class:`RealSlices` draw augmented patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import edt as edt_pkg
import numpy as np
from scipy import ndimage as ndi

from .. import synth
from ..codes import CBD, NMC, PORE
from ..metrics import fill_cracks
from .intensity import normalize, robust_range

#: The real nano-CT slices by acquisition (file ``raw_N.tif`` with ``raw_N_label.tif``).
ACQUISITIONS: dict[str, tuple[int, ...]] = {
    "A": (1, 100, 200, 300, 400),
    "B": (103, 360, 510, 738, 929, 1098),
    "D": (1501, 1502, 1503, 1504),
}
#: Label values of those files -> phase codes (their 0 = NMC, 1 = CBD, 2 = pore).
REAL_PHASE_MAP = np.array([NMC, CBD, PORE], np.uint8)
#: Acquisition kept out of training and used for validation.
HOLDOUT = "B"
#: Default location of the real slices, relative to the repository root.
REAL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "nanoct_nmc_slices"


def random_electrode(rng: np.random.Generator, shape=(64, 96, 96)) -> synth.SyntheticElectrode:
    """One synthetic electrode with randomised microstructure and imaging."""
    sp = float(rng.uniform(0.25, 0.6))
    params = synth.ElectrodeParams(
        shape=tuple(shape), spacing=(sp, sp, sp),
        radius_median_um=float(rng.uniform(2.2, 5.0)),
        radius_sigma=float(rng.uniform(0.1, 0.4)),
        radius_min_um=1.2,
        packing=float(rng.uniform(0.3, 0.5)),
        calendering=float(rng.uniform(0.8, 1.0)),
        shape_jitter=float(rng.uniform(0.02, 0.15)),
        crack_prob=float(rng.uniform(0.0, 0.7)),
        crack_width_um=float(rng.uniform(0.3, 0.8)),
        cbd_coverage=float(rng.uniform(0.4, 0.9)),
        cbd_thickness_um=float(rng.uniform(0.5, 1.5)),
        detachment_mean=float(rng.uniform(0.0, 0.7)),
        detachment_spread=float(rng.uniform(0.05, 0.2)),
        gap_um=float(rng.uniform(0.4, 1.2)),
    )
    pore = float(rng.uniform(0.0, 0.25))
    nmc = float(rng.uniform(0.7, 1.0))
    imaging = synth.ImagingParams(
        intensity_pore=pore, intensity_nmc=nmc,
        intensity_cbd=pore + float(rng.uniform(0.25, 0.7)) * (nmc - pore),
        cbd_texture=float(rng.uniform(0.0, 0.2)),
        blur_um=sp * float(rng.uniform(0.3, 2.0)),
        noise=float(rng.uniform(0.01, 0.1)),
        cupping=float(rng.uniform(-0.1, 0.2)) if rng.random() < 0.3 else 0.0,
        rings=float(rng.uniform(0.0, 0.05)) if rng.random() < 0.3 else 0.0,
        streaks=float(rng.uniform(0.0, 0.1)) if rng.random() < 0.2 else 0.0,
    )
    return synth.make_electrode(params, imaging, rng=rng, name="training")


def instance_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Instance targets of true particle labels.

    Parameters
    ----------
    labels : (Z, Y, X) int
        Particles 1..n, 0 elsewhere (cracks are 0).

    Returns
    -------
    centre : (Z, Y, X) float32
        On each crack-filled particle, the distance to its own surface (cracks
        do not count as surface) divided by the particle's largest distance:
        in (0, 1], 0 outside particles.
    boundary : (Z, Y, X) uint8
        1 on particle voxels with a face neighbour in another particle.
    """
    filled = fill_cracks(labels)
    dist = edt_pkg.edt(np.ascontiguousarray(filled), black_border=False, parallel=1).astype(np.float32)
    n = int(filled.max())
    peak = np.asarray(ndi.maximum(dist, filled, index=np.arange(n + 1)), np.float32) if n else np.zeros(1)
    peak[peak <= 0] = 1.0
    centre = np.where(filled > 0, dist / peak[filled], 0).astype(np.float32)
    boundary = np.zeros(labels.shape, np.uint8)
    for ax in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[ax], b[ax] = slice(1, None), slice(None, -1)
        la, lb = filled[tuple(a)], filled[tuple(b)]
        diff = (la > 0) & (lb > 0) & (la != lb)
        boundary[tuple(a)] |= diff
        boundary[tuple(b)] |= diff
    boundary &= (labels > 0)
    return centre, boundary


@dataclass(frozen=True)
class RealSlice:
    """One labelled real slice: normalised image (H, W) float32 and phases (H, W) uint8."""

    name: str
    acquisition: str
    image: np.ndarray
    phases: np.ndarray


def load_real_slices(folder: Path | str = REAL_DIR, acquisitions=None) -> list[RealSlice]:
    """Read the labelled nano-CT slices of the given acquisitions (all by default).

    Raises
    ------
    FileNotFoundError
        When the folder or a listed file is missing.
    """
    import tifffile

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"real slice folder not found: {folder}")
    acquisitions = list(ACQUISITIONS) if acquisitions is None else list(acquisitions)
    out = []
    for acq in acquisitions:
        if acq not in ACQUISITIONS:
            raise ValueError(f"unknown acquisition {acq!r}; choose from {list(ACQUISITIONS)}")
        for n in ACQUISITIONS[acq]:
            img = tifffile.imread(folder / f"raw_{n}.tif").astype(np.float32)
            lab = tifffile.imread(folder / f"raw_{n}_label.tif")
            if lab.shape != img.shape or lab.max() > 2:
                raise ValueError(f"raw_{n}: label image does not match (shape {lab.shape}, max {lab.max()})")
            out.append(RealSlice(f"raw_{n}", acq, normalize(img, *robust_range(img)), REAL_PHASE_MAP[lab]))
    return out


def _augment_intensity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, brightness, gamma-like bend, smooth multiplicative field and noise."""
    x = x * np.float32(rng.uniform(0.8, 1.25)) + np.float32(rng.uniform(-0.2, 0.2))
    if rng.random() < 0.5:
        g = rng.uniform(0.7, 1.4)
        x = (np.sign(x) * np.abs(x) ** g).astype(np.float32)
    if rng.random() < 0.5:
        small = rng.normal(0, 1, size=[max(2, s // 16) for s in x.shape]).astype(np.float32)
        field = ndi.zoom(small, [s / t for s, t in zip(x.shape, small.shape)], order=1)
        x = x * (1 + np.float32(rng.uniform(0, 0.15)) * field[tuple(slice(0, s) for s in x.shape)])
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(0.01, 0.1), size=x.shape).astype(np.float32)
    return x.astype(np.float32, copy=False)


def _flip_rot(arrays, rng, axes=(0, 1, 2)):
    for ax in axes:
        if rng.random() < 0.5:
            arrays = [np.flip(a, ax) for a in arrays]
    if rng.random() < 0.5:
        arrays = [np.swapaxes(a, axes[-2], axes[-1]) for a in arrays]
    return [np.ascontiguousarray(a) for a in arrays]


class SyntheticPool:
    """A pool of random synthetic electrodes; patches are random crops of them.

    ``refresh()`` replaces the oldest electrode with a new one, so the data
    keeps changing without paying for a new electrode per step.
    """

    def __init__(self, rng: np.random.Generator, size: int = 12, shape=(64, 96, 96)):
        self.rng = rng
        self.shape = tuple(shape)
        self.items = [self._make() for _ in range(size)]
        self._next = 0

    def _make(self):
        e = random_electrode(self.rng, self.shape)
        centre, boundary = instance_targets(e.labels)
        x = normalize(e.greyscale, *robust_range(e.greyscale))
        return x, e.phases, centre, boundary

    def refresh(self) -> None:
        self.items[self._next] = self._make()
        self._next = (self._next + 1) % len(self.items)

    def batch(self, n: int, patch: int):
        """``n`` patches: image (n,1,p,p,p) float32, phases (n,p,p,p) int64, centre float32, boundary float32."""
        xs, ps, cs, bs = [], [], [], []
        for _ in range(n):
            x, ph, c, b = self.items[self.rng.integers(len(self.items))]
            o = [self.rng.integers(0, s - patch + 1) for s in x.shape]
            sl = tuple(slice(a, a + patch) for a in o)
            x, ph, c, b = _flip_rot([x[sl], ph[sl], c[sl], b[sl]], self.rng)
            xs.append(_augment_intensity(x, self.rng))
            ps.append(ph)
            cs.append(c)
            bs.append(b)
        return (np.stack(xs)[:, None], np.stack(ps).astype(np.int64), np.stack(cs),
                np.stack(bs).astype(np.float32))


class RealSlices:
    """Random augmented crops of labelled real slices, as depth-``depth`` stacks of the same slice."""

    def __init__(self, slices: list[RealSlice], rng: np.random.Generator):
        if not slices:
            raise ValueError("no real slices to train on")
        self.slices = slices
        self.rng = rng

    def batch(self, n: int, patch: int, depth: int = 8):
        """``n`` crops: image (n,1,depth,p,p) float32 and phases (n,p,p) int64."""
        xs, ps = [], []
        for _ in range(n):
            s = self.slices[self.rng.integers(len(self.slices))]
            zoom = float(np.exp(self.rng.uniform(np.log(0.6), np.log(1.5))))
            size = int(np.ceil(patch / zoom)) + 1
            h, w = s.image.shape
            size = min(size, h, w)
            y0, x0 = self.rng.integers(0, h - size + 1), self.rng.integers(0, w - size + 1)
            img = s.image[y0:y0 + size, x0:x0 + size]
            lab = s.phases[y0:y0 + size, x0:x0 + size]
            f = patch / size
            img = ndi.zoom(img, f, order=1)[:patch, :patch]
            lab = ndi.zoom(lab, f, order=0)[:patch, :patch]
            img = np.pad(img, [(0, patch - img.shape[0]), (0, patch - img.shape[1])], mode="edge")
            lab = np.pad(lab, [(0, patch - lab.shape[0]), (0, patch - lab.shape[1])], mode="edge")
            img, lab = _flip_rot([img, lab], self.rng, axes=(0, 1))
            xs.append(_augment_intensity(img, self.rng))
            ps.append(lab)
        x = np.repeat(np.stack(xs)[:, None, None], depth, axis=2)
        return x.astype(np.float32), np.stack(ps).astype(np.int64)

