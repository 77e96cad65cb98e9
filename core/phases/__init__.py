"""Greyscale volume -> phase codes (0 = pore, 1 = CBD, 2 = NMC).

Steps, each a public function so the UI can cache and preview them:
:func:`crop`, :func:`normalize_intensity`, :func:`denoise`,
:func:`suggest_thresholds`, :func:`threshold`,
:func:`correct_partial_volume`, :func:`remove_small_islands`, and
:func:`segment`, which runs them in order from a :class:`SegmentParams`.

One-slice preview in two steps, for a page whose threshold sliders move:
:func:`preview_globals` (per volume and denoising) and :func:`prepare_preview`
(per slice) do the threshold-independent work once; :func:`preview_from` then
gives the slice's phases for any thresholds, equal to the full run's slice
(see its docstring for the exceptions).  :func:`preview_slice` does both in
one call.

Partial-volume correction
-------------------------
Blur makes an NMC-pore edge pass through grey values between the two, which a
plain two-threshold segmentation reads as CBD: a false CBD shell around every
particle, which hides detachment.  :func:`correct_partial_volume` models each
voxel outside NMC as a mixture ``I = s * I_nmc + (1 - s) * I_x`` where ``s`` is
the share of the point-spread function (Gaussian, ``sigma`` voxels) that falls
on NMC, solves for the intensity ``I_x`` of the voxel's own material, and
classifies that as pore or CBD at the pore/CBD threshold.  Thick CBD keeps
its intensity; a blur halo falls back to pore.

The suggested thresholds are the midpoints of the phases' pure grey values
(:func:`phase_references`: medians two voxels inside each phase of a first,
multi-Otsu, segmentation), not the multi-Otsu thresholds, which the blur halo
drags.  The blur ``sigma`` is fitted to the image (:func:`estimate_pv_sigma`).
The grey values and the blur are properties of the image: a change of
thresholds leaves them alone, so a preview and a full run share them.

Modules
-------
``params``          :class:`SegmentParams`, :func:`check_greyscale` and the non-finite voxels' policy
                    (:func:`check_greyscale_nonfinite`, :func:`nonfinite_fill`)
``denoise``         :func:`crop`, :func:`normalize_intensity`, :func:`denoise`; the denoised volume slab by slab
``threshold``       :func:`threshold` (where the thresholds are applied), :func:`phase_references`,
                    :func:`suggest_thresholds` and the image model they come from
``partial_volume``  :func:`estimate_pv_sigma`, :func:`correct_partial_volume` (one implementation for run and preview)
``blur``            what a blur means for the analysis: :func:`resolvable_gap_um`, :func:`assess_blur` (data;
                    the caller words the advice)
``islands``         :func:`remove_small_islands`
``fill``            a fill outside the field of view: :func:`fill_reading`, :func:`fill_message`, :func:`fill_region`, :func:`fov_disc`, :func:`data_box`
``shading``         a brightness drift along z: :func:`shading_reading`, :func:`shading_message`,
                    :func:`flatten_shading` (``SegmentParams(flatten=True)``)
``alignment``       slices shifted against one another (a FIB-SEM stack not aligned): :func:`alignment_reading`,
                    :func:`alignment_message`
``preview``         :func:`preview_globals`, :func:`prepare_preview`, :func:`preview_from`, :func:`preview_slice`,
                    :func:`preview_window`
                    (volumes in memory or read lazily, box by box), :func:`grey_sample` (by blocks)
``segment``         :func:`segment`, :func:`segment_detailed` (the driver)
"""

from .blur import (
    BLUR_EITHER_WAY,
    DOWNSAMPLE_MIN_RADIUS,
    PV_SIGMA_MAX,
    RESOLVABLE_GAP_SIGMAS,
    SIGMA_ORIGINS,
    BlurAssessment,
    BlurKind,
    SigmaOrigin,
    assess_blur,
    box_blur_removed,
    resolvable_gap_um,
    sigma_origin,
    suggested_downsample,
)
from .denoise import crop, denoise, normalize_intensity
from .fill import FILL_CENTRE_RATIO, FILL_MIN_FACE_SHARE, data_box, fill_message, fill_reading, fill_region, fov_disc
from .islands import remove_small_islands
from .params import (DENOISE_METHODS, NONFINITE_MAX_SHARE, Denoise, SegmentParams, check_greyscale,
                     check_greyscale_nonfinite, nonfinite_fill)
from .partial_volume import SIGMA_BOUNDS, correct_partial_volume, estimate_pv_sigma
from .preview import (
    MAX_ISLAND_DEPTH,
    MAX_PREVIEW_PIXELS,
    PREVIEW_WINDOW,
    PreviewContext,
    PreviewGlobals,
    grey_sample,
    prepare_preview,
    preview_from,
    preview_globals,
    preview_slice,
    preview_window,
)
from .alignment import ALIGN_WARN_PX, alignment_message, alignment_reading
from .shading import SHADING_WARN, flatten_shading, shading_message, shading_reading
from .segment import SegmentResult, segment, segment_detailed
from .threshold import READING_GAP, phase_references, suggest_thresholds, threshold

__all__ = [
    # parameters
    "DENOISE_METHODS", "Denoise", "SegmentParams", "check_greyscale", "NONFINITE_MAX_SHARE", "check_greyscale_nonfinite",
    "nonfinite_fill", "FILL_CENTRE_RATIO", "FILL_MIN_FACE_SHARE", "fill_message", "fill_reading", "fill_region", "fov_disc", "data_box",
    "SHADING_WARN", "shading_reading", "shading_message", "flatten_shading",
    "ALIGN_WARN_PX", "alignment_reading", "alignment_message",
    # steps
    "crop", "normalize_intensity", "denoise", "suggest_thresholds", "threshold", "phase_references", "READING_GAP",
    "estimate_pv_sigma", "correct_partial_volume", "SIGMA_BOUNDS", "remove_small_islands",
    # blur
    "BLUR_EITHER_WAY", "DOWNSAMPLE_MIN_RADIUS",
    "PV_SIGMA_MAX", "RESOLVABLE_GAP_SIGMAS", "SIGMA_ORIGINS", "BlurAssessment", "BlurKind", "SigmaOrigin",
    "assess_blur", "box_blur_removed", "resolvable_gap_um", "sigma_origin", "suggested_downsample",
    # preview
    "MAX_ISLAND_DEPTH", "MAX_PREVIEW_PIXELS", "PREVIEW_WINDOW", "PreviewContext", "PreviewGlobals", "grey_sample",
    "prepare_preview", "preview_from", "preview_globals", "preview_slice", "preview_window",
    # driver
    "SegmentResult", "segment", "segment_detailed",
]
