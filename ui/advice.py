"""The dashboard's wording of what :mod:`core` measures (no streamlit import).

Core returns data (:func:`core.phases.assess_blur`); the sentences a page
shows, and the buttons they point to, are written here.
"""

from __future__ import annotations

from core.io.downsampling import MAX_DOWNSAMPLE
from core.phases import BLUR_EITHER_WAY, DOWNSAMPLE_MIN_RADIUS, BlurAssessment, box_blur_removed

__all__ = ["ALMOST_LOOSE", "DOWNSAMPLE_MIN_RADIUS", "advises_downsampling", "almost_loose_share", "almost_loose_warning",
           "analysis_method", "blur_warning", "median_radius_voxels", "seeding_reading"]


def median_radius_voxels(table, spacing) -> float | None:
    """Median radius (voxels) of the particles of a particle table that touch no face of the volume (all of them
    where none is inside: then low, as the faces cut them), from ``equiv_diameter_um`` and the voxel size ``spacing``
    (µm, its mean); None without particles."""
    import numpy as np

    if table is None or len(table) == 0 or "equiv_diameter_um" not in table:
        return None
    inner = table[~table["touches_edge"].astype(bool)] if "touches_edge" in table else table
    d = (inner if len(inner) else table)["equiv_diameter_um"].to_numpy(float)
    return float(np.nanmedian(d)) / 2.0 / float(np.mean(spacing))


def advises_downsampling(blur: BlurAssessment, median_radius: float | None = None) -> bool:
    """Whether :func:`blur_warning` advises downsampling by ``blur.factor`` (and the page offers the button)."""
    return (blur.kind not in ("ok", "not_measured") and blur.factor >= 2
            and (median_radius is None or median_radius >= DOWNSAMPLE_MIN_RADIUS))


def blur_warning(blur: BlurAssessment, median_radius: float | None = None) -> str | None:
    """One sentence for a blur the partial-volume correction does not handle, else None ("ok").

    Names the app's remedies (the Segment page's downsampled-copy button, the
    Samples page's downsampling) and the CLI's.  With ``median_radius`` (voxels, the analysed particles'; see
    :func:`median_radius_voxels`) below :data:`DOWNSAMPLE_MIN_RADIUS` it advises keeping the resolution instead:
    downsampling such particles costs more than the blur.
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
            "σ = 1.2 voxel the electrode's median detachment by 0.21-0.40, within 0.05 once downsampled by 2); "
            + BLUR_EITHER_WAY.removeprefix("so "))
    f = blur.factor
    if f < 2:
        return head + f", and the volume cannot be downsampled further (at most {MAX_DOWNSAMPLE} in all)."
    if not advises_downsampling(blur, median_radius):
        return (head + f". These particles are small on this grid, though (median radius "
                f"{median_radius:.0f} voxels), and downsampling small particles costs more than the blur (on that "
                "generator's packings of median radius 10 and 14 voxels at σ = 1.2 voxel, downsampled by 2, the median "
                "detachment came out up to 0.23 too high, against -0.11 to +0.04 at full resolution): keep this "
                "resolution, and read its detachment with that in mind.")
    return (head + f". Downsample the volume by {f} before the analysis (in the app: 'Add a copy downsampled by "
            f"{f}' on the Segment page, or 'Downsample by' on the Samples page; CLI: --downsample {f})"
            + ("; downsampling by more than 2 was not validated and can overshoot the other way, so compare the "
               "two analyses" if f > 2 else "") + ".")


def refined_subject(refinement: dict) -> str:
    """What a run's phase refinement moved (its ``provenance["phase_refinement"]``): "the NMC surfaces" where only
    they could move (``moves="nmc"``), else "the phases"."""
    return "the NMC surfaces" if refinement.get("moves") == "nmc" else "the phases"


def refine_reading(provenance: dict) -> str | None:
    """Where the latest analysis's automatic refinement could not read the blur from the pore-NMC edges (its
    ``provenance["refine_auto"]["blur_voxels"]`` NaN): one sentence saying the phases were not refined for it and
    that the partial-volume blur said beside it is another reading; else None."""
    import math

    auto = (provenance or {}).get("refine_auto") or {}
    blur = auto.get("blur_voxels")
    if blur is None or math.isfinite(float(blur)) or auto.get("refine") != "off":
        return None
    return ("The blur could not be read from the widths of the pore-NMC edges (too few clean edges), so the phases "
            "were not refined against it; the partial-volume blur σ is another reading, fitted to the grey values "
            "around the NMC.")


def seeding_reading(auto_seen: dict, refinement: dict | None, pv_sigma: float | None = None) -> str:
    """What the latest analysis's ``seeding="auto"`` read and did (its ``provenance["seeding_auto"]``, whose
    ``blur_voxels`` is a number, and its ``phase_refinement`` or None), in one sentence: the blur it measured, or
    (NaN) that it could not measure one (too few pore-NMC edges, or a volume or slice too small for the edge
    profiles; a single slice's blur is read in its plane), and then, where the partial-volume fit gave its own
    blur (``pv_sigma``), that that one is another reading (a real nano-CT slice: the fit read 2.74 voxels, the
    edges none, and the pages seemed to contradict one another)."""
    import math

    blur = auto_seen.get("blur_voxels")
    seeded = "a deconvolved mask" if auto_seen.get("seeding") == "deconvolved" else "the NMC phase"
    if not math.isfinite(float(blur)):
        return ("The latest analysis could not read the blur from the widths of the pore-NMC edges (too few clean "
                "edges, or too small for the edge profiles)" + ("" if refinement else ", so it did not refine the "
                                                                "phases,") + " and seeded on "
                + seeded + (f"; the partial-volume correction's σ = {float(pv_sigma):.2f} voxel is another reading, "
                            "fitted to the grey values around the NMC." if pv_sigma else "."))
    other = (f"; the partial-volume correction's σ = {float(pv_sigma):.2f} voxel (Segment page) is another reading, "
             "fitted to the grey values around the NMC" if pv_sigma and f"{float(pv_sigma):.2f}" != f"{float(blur):.2f}"
             else "")  # (QA: 0.83 here, 0.858 on the Segment page, said without a word)
    return (f"The latest analysis measured a blur of {float(blur):.2f} voxel from the widths of the pore-NMC edges"
            + (f", refined {refined_subject(refinement)} against a model of that blur" if refinement else "")
            + " and seeded on " + seeded + other + ".")


def blur_not_measured(analysis, downsample: int = 1) -> float | None:
    """The σ (voxels) at the fit's upper bound where ``analysis`` corrected the partial volume with a blur it could
    not measure (:func:`core.phases.assess_blur` "not_measured"), else None (measured, given, no correction, or
    phases read from the file)."""
    from core.phases import assess_blur

    seg = analysis.resolved.segment
    if analysis.provenance.get("presegmented") or not seg.partial_volume or not seg.pv_sigma:
        return None
    blur = assess_blur(float(seg.pv_sigma), downsample, origin=analysis.pv_sigma_origin or "fitted")
    return float(seg.pv_sigma) if blur.kind == "not_measured" else None


def unmeasured_blur_note(sigma: float, median_detachment: float | None) -> str:
    """Beside the particles of an analysis whose blur could not be measured (:func:`blur_not_measured`), and in
    their report: what that does to the detachment (QA: a real nano-CT slice read a median detachment of 0.00
    where its manual labels give 0.33, a blurred ring around every particle read as CBD, with the Segment page's
    warning only)."""
    median = "" if median_detachment is None or median_detachment != median_detachment else (
        f" (median detachment {median_detachment:.2f} here)")
    return (f"The blur fit of this analysis reached its upper bound (σ = {sigma:.2f} voxel): the scan's blur could not "
            "be measured, and the blurred edge between a particle and pore, whose grey values lie between the two as "
            f"CBD's do, may have been read as a shell of CBD that hides detachment{median}. Check the phases against "
            "the scan on the Segment page before reading the detachment.")


#: Above this median detachment most particles are read as almost loose (:func:`almost_loose_warning`).
ALMOST_LOOSE = 0.9
#: Fewest particles with a detachment for :func:`almost_loose_warning` to judge an analysis.
ALMOST_LOOSE_MIN_PARTICLES = 10


def almost_loose_share(table) -> tuple[float, float] | None:
    """(median detachment, share of particles above :data:`ALMOST_LOOSE`) of a particle table whose median is above
    :data:`ALMOST_LOOSE` with at least :data:`ALMOST_LOOSE_MIN_PARTICLES` particles measured; else None."""
    import numpy as np

    if table is None or "detachment" not in table:
        return None
    d = table["detachment"].to_numpy(float)
    d = d[np.isfinite(d)]
    median = float(np.median(d)) if d.size >= ALMOST_LOOSE_MIN_PARTICLES else 0.0
    return (median, float(np.mean(d > ALMOST_LOOSE))) if median > ALMOST_LOOSE else None


def almost_loose_warning(table, method: str | None, name: str | None = None) -> str | None:
    """A warning where nearly every particle is read as almost wholly facing pore (:func:`almost_loose_share`), which
    in a working electrode is more likely a phase error at the particle edges than the electrode; None otherwise.

    QA walk 15: strokes painted by hand on a real nano-CT slice gave a median detachment of 0.99 where the slice's
    expert labels give 0.00, and the only note beside it described the opposite bias (a CBD shell).
    ``method``: the analysis's (``"classifier"`` adds what to paint; ``"presegmented"``: phases read from a file);
    ``name``: the electrode's, on a page of several.
    """
    found = almost_loose_share(table)
    if found is None:
        return None
    median, share = found
    pct = int(ALMOST_LOOSE * 100)
    text = (f"{name + ': ' if name else ''}{share:.0%} of the particles have more than {pct} % of their surface facing "
            f"pore (median detachment {median:.2f}). In a working electrode most particles touch the carbon-binder: a "
            "thin layer read as pore around nearly every particle is more likely the particles' dark edge than gaps.")
    if method == "classifier":
        return text + (" The classifier reads that edge as pore where it looks more like the pore painted than the "
                       "CBD painted: on the Segment page, look at the preview's phases along the particle edges, "
                       "paint CBD right up to the particles where the scan shows them touching, and run again.")
    if method == "presegmented":
        return text + (" These phases were read from the file as segmented elsewhere: look at them along the particle "
                       "edges (the Segment page shows them) before reading these numbers.")
    return text + " Look at the phases along the particle edges on the Segment page before reading these numbers."


def analysis_method(analysis) -> str:
    """Where an analysis's phases came from: ``"presegmented"`` where they were read from a file, else its resolved
    method (``"threshold"``, ``"model"``, ``"classifier"``; a classifier's notes apply to its phases only)."""
    if (analysis.provenance or {}).get("presegmented"):
        return "presegmented"
    return analysis.resolved.method
