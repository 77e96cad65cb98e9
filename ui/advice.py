"""The dashboard's wording of what :mod:`core` measures (no streamlit import).

Core returns data (:func:`core.phases.assess_blur`); the sentences a page
shows, and the buttons they point to, are written here.
"""

from __future__ import annotations

from core.io.downsampling import MAX_DOWNSAMPLE
from core.phases import BlurAssessment, box_blur_removed

__all__ = ["blur_warning"]


def blur_warning(blur: BlurAssessment) -> str | None:
    """One sentence for a blur the partial-volume correction does not handle, else None ("ok").

    Names the app's remedies (the Segment page's downsampled-copy button, the
    Samples page's downsampling) and the CLI's.
    """
    sigma = blur.sigma
    if blur.kind == "ok":
        return None
    if blur.kind == "not_measured":
        return (f"The blur fit reached its upper bound (σ = {sigma:.2f} voxel): the image's blur could "
                "not be measured (a blur model of the phases does not fit these grey values), so the partial-volume "
                "correction is unreliable here; compare the preview with it switched off (Denoising and clean-up), "
                "or give pv_sigma yourself.")
    box, d = "", blur.downsampled
    if d > 1:
        box = f"; {box_blur_removed(sigma, d):.2f} without the box of the downsampling by {d}"
    head = (f"The blur (σ = {sigma:.2f} voxel{box}) is wider than the partial-volume correction handles "
            "(validated at 0.75 voxel; on synthetic electrodes at σ ≥ 1 voxel the detachment came out too low by "
            "0.05-0.19 even with the phases refined against the blur, and on another generator's packings at "
            "σ = 1.2 voxel the electrode's median detachment by 0.21-0.40, within 0.05 once downsampled by 2), so "
            "the detachment will be underestimated")
    f = blur.factor
    if f < 2:
        return head + f", and the volume cannot be downsampled further (at most {MAX_DOWNSAMPLE} in all)."
    return (head + f": downsample the volume by {f} before the analysis (in the app: 'Add a copy downsampled by "
            f"{f}' on the Segment page, or 'Downsample by' on the Samples page; CLI: --downsample {f}).")


def refined_subject(refinement: dict) -> str:
    """What a run's phase refinement moved (its ``provenance["phase_refinement"]``): "the NMC surfaces" where only
    they could move (``moves="nmc"``), else "the phases"."""
    return "the NMC surfaces" if refinement.get("moves") == "nmc" else "the phases"
