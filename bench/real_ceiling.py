"""How far can any learner get on the held-out real acquisition? In-domain ceilings.

Issue #4 asks for a mean per-phase IoU >= 0.80 on the held-out real nano-CT
acquisition (B).  The shipped U-Net, trained on acquisitions A and D plus
synthetic electrodes, reaches 0.56.  This benchmark asks what the labels allow
at all by giving learners *more* than the shipped model had: slices of B itself.

Settings (the test pixels are never trained on):

- ``cross``: train on A + D, test on all six B slices (the shipped model's setting);
- ``folds``: two folds over B's slices; each trains on A + D + three B slices
  (fold 1: raw_360, raw_738, raw_1098; fold 2: raw_103, raw_510, raw_929) and
  tests on the other three; the table gives the mean of the two folds over all six;
- ``halves``: train on A + D + the left half of every B slice, test on the right
  halves (the nearest thing to in-domain training these labels allow).

Learners:

- ``pixel classifier``: ilastik-style per-pixel features (the grey value;
  Gaussian, Laplacian of Gaussian, gradient magnitude, Hessian and structure-tensor
  eigenvalues and local variance at sigma 0.7, 1, 1.6, 3.5, 5, 10 px) and a
  two-hidden-layer MLP (128, 64) trained on 40,000 random labelled pixels per
  training image (15 epochs of Adam, seeded);
- ``U-Net, real only`` (``--unet``; about 13 min per run on one core): the
  shipped architecture (:class:`core.nn.model.UNet3D`) trained from scratch on
  the real crops only (the phase loss of :mod:`core.nn.train`, 1500 steps of
  batch 4, 96² crops stacked 8 deep, the shipped augmentation).

For reference on the same test pixels: the shipped weights and the threshold
method's default (``core.phases.segment_detailed``, per image).  A table of the
labels' grey values per acquisition shows why the acquisitions disagree: the
contrast of CBD over pore, ``(median CBD - median pore) / (median NMC - median
pore)`` in each slice's labels.

Usage:  python bench/real_ceiling.py [--unet] [--quick] [--data PATH]
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import _common as C  # noqa: E402  (sets sys.path)
from core.codes import CBD, NMC, PORE
from core.evaluate import phase_iou

PHASES = ("pore", "cbd", "nmc")
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
FOLDS = {1: ("raw_360", "raw_738", "raw_1098"), 2: ("raw_103", "raw_510", "raw_929")}  # the training B slices


def load(data: Path):
    from core.nn import data as nnd

    return nnd.load_real_slices(data)


def half(s, left: bool):
    from core.nn.data import RealSlice

    w = s.image.shape[1] // 2
    cut = (lambda v: v[:, :w]) if left else (lambda v: v[:, w:])
    return RealSlice(s.name, s.acquisition, cut(s.image), cut(s.phases))


def splits(slices, quick: bool = False):
    """{setting: [(train slices, test slices), ...]}."""
    other = [s for s in slices if s.acquisition != "B"]
    b = [s for s in slices if s.acquisition == "B"]
    out = {"cross": [(other, b)],
           "folds": [(other + [s for s in b if s.name in FOLDS[k]], [s for s in b if s.name not in FOLDS[k]])
                     for k in (1, 2)],
           "halves": [(other + [half(s, True) for s in b], [half(s, False) for s in b])]}
    if quick:
        out = {"halves": out["halves"]}
    return out


# ----------------------------------------------------------------------------- pixel classifier

def features(img: np.ndarray) -> np.ndarray:
    """(H, W, 1 + 8 * len(SIGMAS)) float32 filter responses of a normalised slice."""
    from scipy import ndimage as ndi

    img = np.asarray(img, np.float32)
    f = [img]
    gx = ndi.gaussian_filter(img, 0.7, order=(0, 1))
    gy = ndi.gaussian_filter(img, 0.7, order=(1, 0))

    def eig(a, b, c):
        tr, det = a + b, a * b - c * c
        d = np.sqrt(np.maximum(tr * tr / 4 - det, 0))
        return tr / 2 + d, tr / 2 - d

    for s in SIGMAS:
        g = ndi.gaussian_filter(img, s)
        f += [g, ndi.gaussian_laplace(img, s), ndi.gaussian_gradient_magnitude(img, s)]
        f += eig(ndi.gaussian_filter(img, s, order=(0, 2)), ndi.gaussian_filter(img, s, order=(2, 0)),
                 ndi.gaussian_filter(img, s, order=(1, 1)))
        f += eig(*(ndi.gaussian_filter(v, s) for v in (gx * gx, gy * gy, gx * gy)))
        f += [ndi.gaussian_filter(img * img, s) - g * g]
    return np.stack(f, -1).astype(np.float32)


def pixel_classifier(train, test, seed: int = 0, per_image: int = 40_000, epochs: int = 15) -> dict:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for s in train:
        f = features(s.image).reshape(-1, 1 + 8 * len(SIGMAS))
        idx = rng.choice(len(f), min(per_image, len(f)), replace=False)
        xs.append(f[idx])
        ys.append(s.phases.reshape(-1)[idx])
    x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy((x - mu) / sd), torch.from_numpy(y)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, 3))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(yt))
        for i in range(0, len(yt), 1024):
            b = perm[i:i + 1024]
            loss = torch.nn.functional.cross_entropy(net(xt[b]), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    out = {}
    with torch.no_grad():
        for s in test:
            f = (features(s.image).reshape(-1, x.shape[1]) - mu) / sd
            pred = net(torch.from_numpy(f)).argmax(1).numpy().astype(np.uint8).reshape(s.phases.shape)
            out[s.name] = phase_iou(s.phases[None], pred[None])
    return out


# ----------------------------------------------------------------------------- U-Net, real crops only

def unet_real_only(train, test, steps: int = 1500, seed: int = 0, threads: int = 1) -> dict:
    import torch

    from core.nn import data as nnd
    from core.nn.infer import real_slice_scores
    from core.nn.model import N_PHASES, ModelConfig, UNet3D
    from core.nn.train import phase_loss

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    real = nnd.RealSlices(list(train), np.random.default_rng(seed))
    layout = torch.channels_last_3d
    model = UNet3D(ModelConfig()).to(memory_format=layout)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    warm = max(1, steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    depth, lo = 8, 2
    for _ in range(steps):
        x, p = (torch.from_numpy(a) for a in real.batch(4, 96, depth))
        out = model(x.contiguous(memory_format=layout))[:, :N_PHASES, lo:lo + 4]
        loss = phase_loss(out, p[:, None].expand(-1, 4, -1, -1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return {k: v for k, v in real_slice_scores(model, test)["per_slice"].items()}


# ----------------------------------------------------------------------------- references

def shipped(test) -> dict:
    from core.nn.infer import load_model, real_slice_scores

    return real_slice_scores(load_model(), test)["per_slice"]


def thresholds(test) -> dict:
    from core.phases import segment_detailed

    return {s.name: phase_iou(s.phases[None], segment_detailed(s.image[None]).phases) for s in test}


def grey_table(slices) -> list[dict]:
    rows = []
    for s in slices:
        med = {p: float(np.median(s.image[s.phases == c])) for p, c in (("pore", PORE), ("cbd", CBD), ("nmc", NMC))}
        frac = np.bincount(s.phases.ravel(), minlength=3) / s.phases.size
        rows.append({"acq": s.acquisition, "slice": s.name,
                     "median pore / CBD / NMC": "/".join(f"{med[p]:+.2f}" for p in PHASES),
                     "CBD over pore contrast": (med["cbd"] - med["pore"]) / (med["nmc"] - med["pore"]),
                     "pore / CBD / NMC fraction": "/".join(f"{v:.2f}" for v in frac[[PORE, CBD, NMC]])})
    return rows


def summarise(per_slice: dict) -> dict:
    iou = {p: float(np.nanmean([v[p] for v in per_slice.values()])) for p in PHASES}
    return {**{f"IoU {p}": iou[p] for p in PHASES}, "mean IoU": float(np.mean(list(iou.values())))}


def _job(args):
    import torch

    learner, setting, k, train, test = args
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = pixel_classifier(train, test) if learner == "pixel classifier" else unet_real_only(train, test)
    return learner, setting, k, res, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_common_args(ap)
    from core.nn.data import REAL_DIR

    ap.add_argument("--data", default=str(REAL_DIR), help=f"folder of the labelled slices (default {REAL_DIR})")
    ap.add_argument("--unet", action="store_true", help="also train the U-Net on real crops only (slow)")
    ap.add_argument("--workers", type=int, default=2, help="parallel training runs (one core each)")
    args = ap.parse_args(argv)
    title = "## In-domain ceilings on the held-out real acquisition (`bench/real_ceiling.py`)" + (
        " — QUICK smoke run" if args.quick else "")
    data = Path(args.data)
    if not data.is_dir() or not any(data.glob("raw_*_label.tif")):
        msg = f"SKIPPED: no labelled slices found in {data} (the shared data folder is absent)."
        print(msg)
        C.write_section("real_ceiling" + ("_quick" if args.quick else ""),
                        "\n".join([title, "", *C.env_lines(), "", msg]), C.results_path(args))
        return 0
    t_start = time.perf_counter()
    slices = load(data)
    sp = splits(slices, args.quick)
    learners = ["pixel classifier"] + (["U-Net, real only"] if args.unet else [])
    jobs = [(ln, st, k, tr, te) for ln in learners for st, folds in sp.items() for k, (tr, te) in enumerate(folds)]
    results: dict[tuple[str, str], dict] = {}
    seconds: dict[tuple[str, str], float] = {}
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for ln, st, k, res, dt in pool.map(_job, jobs):
            results.setdefault((ln, st), {}).update(res)
            seconds[(ln, st)] = seconds.get((ln, st), 0.0) + dt
            print(f"  {ln} / {st} fold {k}: {summarise(res)['mean IoU']:.3f} ({dt:.0f} s)", flush=True)
    rows = []
    for st, folds in sp.items():
        test = [s for _, te in folds for s in te]
        for name, per in (("automatic thresholds (reference)", thresholds(test)),
                          ("shipped weights v2 (reference)", shipped(test))):
            rows.append({"setting": st, "learner": name, "B pixels trained on": "none", **summarise(per)})
        for ln in learners:
            rows.append({"setting": st, "learner": ln,
                         "B pixels trained on": {"cross": "none", "folds": "3 other slices",
                                                 "halves": "left halves"}[st],
                         **summarise(results[(ln, st)]), "train s": seconds[(ln, st)]})
    total = time.perf_counter() - t_start
    lines = [title, "", *C.env_lines(), f"- script wall time: {total:.0f} s", "",
             "Test pixels: acquisition B's six labelled slices (`cross`, `folds`: whole slices; `halves`: their "
             "right halves). Per-phase IoU is the mean over the test images. The learners and settings are in the "
             "script's docstring. Reference rows are not trained here: the shipped U-Net weights (trained on A, D "
             "and synthetic electrodes) and the threshold method's default.", "",
             C.md_table(rows, ["setting", "learner", "B pixels trained on", "IoU pore", "IoU cbd", "IoU nmc",
                               "mean IoU", "train s"]),
             "### The labels' grey values (normalised images, 0.5–99.5 % -> -1..1)", "",
             "A CBD-over-pore contrast near 0 or below means the labels' CBD is as dark as or darker than their "
             "pore: no grey-value rule, and no learner trained on those slices, separates them as B's labels do.",
             "", C.md_table(grey_table(slices), ["acq", "slice", "median pore / CBD / NMC",
                                                 "CBD over pore contrast", "pore / CBD / NMC fraction"])]
    C.publish("real_ceiling", lines, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
