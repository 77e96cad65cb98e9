"""Which analysis of each electrode the Compare page shows, and how the compared analyses differ (no streamlit).

The Compare page pins one finished analysis per electrode: the one it showed
first, or the one the user picked.  A newer analysis of the same sample (made
in another browser, or by a job) never replaces a pin silently: the page
offers it.  The pins travel in the URL as ``?a=ID,ID,...`` (analysis ids in
the order of the electrodes; each id names its sample), so a reload or a
shared link shows the same comparison.

Here: the URL's form (:func:`parse_url_ids`, :func:`url_value`), how an
analysis is named (:func:`analysis_label`, :func:`method_words`), and which
parameters differ between the compared analyses (:func:`param_differences`,
:func:`differences_sentence`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.pipeline import AnalysisParams
from core.phases.forward import AUTO_NOISE
from core.seeding import AUTO_BLUR
from core.slices import recorded_single_slice
from core.records import Analysis

#: The URL's query parameter holding the pinned analyses (``?a=3,7,9``).
URL_ANALYSES = "a"


# --------------------------------------------------------------------------- the URL


def parse_url_ids(raw: str | None) -> list[int]:
    """The analysis ids of ``?a=3,7,9`` in order, each once; parts that are not whole numbers are skipped."""
    out: list[int] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in out:
            out.append(int(part))
    return out


def url_value(analysis_ids) -> str:
    """``"3,7,9"``: the form :func:`parse_url_ids` reads."""
    return ",".join(str(int(i)) for i in analysis_ids)


# --------------------------------------------------------------------------- naming


def method_words(a: Analysis) -> str:
    """How the analysis found phases and particles, in a few words (``"thresholds"``, ``"3D U-Net"``...)."""
    p = a.requested
    if a.provenance.get("phases_from_analysis") is not None:
        phases = f"phases of #{int(a.provenance['phases_from_analysis'])}"
    elif a.provenance.get("presegmented"):
        phases = "already segmented"
    else:
        phases = {"threshold": "thresholds", "model": "3D U-Net", "classifier": "brush-stroke classifier"}[p.method]
    if p.particles == "model" and p.method != "model":
        phases += ", U-Net particles"
    return phases


def finished_text(a: Analysis) -> str:
    """``"2026-12-02 14:03"``: when the run finished (server time)."""
    return dt.datetime.fromtimestamp(a.updated_at).strftime("%Y-%m-%d %H:%M")


def analysis_label(a: Analysis, *, latest_id: int | None = None) -> str:
    """``"#7 · 2026-12-02 14:03 · thresholds"``, ``" · latest"`` when it is, and its note."""
    text = f"#{a.id} · {finished_text(a)} · {method_words(a)}"
    if latest_id is not None and a.id == latest_id:
        text += " · latest"
    if a.note:
        note = a.note if len(a.note) <= 40 else a.note[:39] + "…"
        text += f" · “{note}”"
    return text


def naming_sentence(name: str, a: Analysis) -> str:
    """``"cycled-5C: analysis #7, 2026-12-02 14:03, thresholds"``."""
    return f"{name}: analysis #{a.id}, {finished_text(a)}, {method_words(a)}"


# --------------------------------------------------------------------------- parameter differences


def _onoff(v) -> str:
    return "on" if v else "off"


def _num(v) -> str:
    return f"{float(v):g}"


def _thresholds(seg) -> str:
    if seg.low is None or seg.high is None:
        return "suggested thresholds"
    return f"thresholds {_num(seg.low)} / {_num(seg.high)} (grey)"


#: The settings :func:`_settings` words, in the order they are listed.
SETTINGS_ORDER: tuple[str, ...] = (
    "method", "particles", "thresholds", "flatten", "denoise", "denoise_size", "partial_volume", "pv_sigma", "refine", "min_island",
    "seeding", "fill_cracks", "markers", "h_um", "min_distance_um", "merge_ratio", "min_volume_um3", "weights",
    "model_h", "tile", "precision", "depth_from")


def phases_given(a: Analysis) -> bool:
    """Whether the analysis read its phases from its input (an already-segmented volume), not from grey values
    (nor from another analysis's phases, unless that one's were the input's: a re-separation of such a sample)."""
    if not a.provenance.get("presegmented"):
        return False
    if a.provenance.get("phases_from_analysis") is None:
        return True
    # a re-separation of an already-segmented sample: its phases are still the file's (QA: described as a threshold
    # run's "phases not refined, seeds on the NMC phase" beside the same file's first analysis)
    return bool(((a.provenance.get("input") or {}).get("source_options") or {}).get("phase_map"))


def _settings(p: AnalysisParams, given: bool = False) -> dict[str, str]:
    """``{setting: its value in words}`` of the settings that act on these parameters' results (``given``: the
    phases were read from the input, so no segmentation setting acts).

    Left out: the sample's geometry (thickness axis, separator side: they describe the scan, not a choice of
    method), the classifier's folder (each sample has its own strokes), and settings that do nothing with
    the others chosen (the denoising size without denoising, the U-Net's settings when it is not used, ...).
    """
    seg, sep, m = p.segment, p.separation, p.model
    out: dict[str, str] = {"method": "phases read from the already-segmented input" if given else
                           {"threshold": "phases by thresholds", "model": "phases by the 3D U-Net",
                            "classifier": "phases by a brush-stroke classifier"}[p.method]}
    out["particles"] = "particles by the U-Net" if p.particles == "model" else "particles by the watershed"
    if p.method in ("threshold", "model") and not given:  # both read the grey values of the whole volume on one scale
        out["flatten"] = "flattened along z" if seg.flatten else "not flattened along z"
    if p.method == "threshold" and not given:
        out["thresholds"] = _thresholds(seg)
        out["denoise"] = "no denoising" if seg.denoise == "none" else f"{seg.denoise} denoising"
        if seg.denoise != "none":
            out["denoise_size"] = f"denoising size {_num(seg.denoise_size)} voxels"
        out["partial_volume"] = f"partial-volume correction {_onoff(seg.partial_volume)}"
        if seg.partial_volume:
            out["pv_sigma"] = "fitted blur σ" if seg.pv_sigma is None else f"blur σ {_num(seg.pv_sigma)} voxels"
        out["refine"] = {"auto": f"phases refined where the blur is {AUTO_BLUR} voxel or more, NMC surfaces where "
                                 f"the noise is {AUTO_NOISE:g} of the contrast or more",
                         "on": "phases refined by the blur model",
                         "nmc": "NMC surfaces refined by the blur model", "off": "phases not refined"}[p.refine]
    if p.method != "model" and not given:
        out["min_island"] = f"islands below {int(seg.min_island)} voxels merged"
    if p.particles == "watershed":
        # phases read from the input leave no greyscale to deconvolve: "auto" always reads the phases there (QA: a
        # re-separation asking for the phases was said to differ in "seeds on the NMC phase" from the first analysis)
        seeding = "phases" if given and p.seeding == "auto" else p.seeding
        out["seeding"] = {"regularised": "seeds on a regularised NMC mask",
                          "deconvolved": "seeds on a deconvolved NMC mask",
                          "auto": "seeds by the measured blur"}.get(seeding, "seeds on the NMC phase")
        out["fill_cracks"] = f"crack filling {_onoff(sep.fill_cracks)}"
        out["markers"] = "h-maxima seeds" if sep.markers == "hmaxima" else "peak seeds"
        if sep.markers == "hmaxima":
            out["h_um"] = f"h = {_num(sep.h_um)} µm"
        else:
            out["min_distance_um"] = f"minimum seed distance {_num(sep.min_distance_um)} µm"
        out["merge_ratio"] = f"merge ratio {_num(sep.merge_ratio)}"
        out["min_volume_um3"] = f"smallest fragment {_num(sep.min_volume_um3)} µm³"
    if p.method == "model" or p.particles == "model":
        out["weights"] = "shipped U-Net weights" if m.weights == "default" else f"U-Net weights {m.weights}"
        out["model_h"] = f"U-Net cue h = {_num(m.h)}"
        out["tile"] = f"U-Net tiles {m.tile} voxels, overlap {m.overlap}"
        out["precision"] = f"U-Net precision {m.precision}"
    out["depth_from"] = ("depth over the electrode (from its surface)" if p.depth_from == "electrode" else
                         "depth over the imaged volume")
    return out


@dataclass(frozen=True)
class ParamDifference:
    """One setting that differs between the compared analyses.

    Attributes
    ----------
    key : str
        The setting (``"h_um"``, ``"thresholds"``, ...).
    values : tuple of (electrode name, value in words or None)
        None where the setting does not act on that analysis.
    defaults : tuple of (electrode name, value in words or None)
        The default of the setting for each analysis's method (None where that method does not use it; the
        method itself against the project's default method).
    """

    key: str
    values: tuple[tuple[str, str | None], ...]
    defaults: tuple[tuple[str, str | None], ...]

    def own(self, name: str) -> str | None:
        """The value of electrode ``name`` where it is not the default, else None."""
        value, default = dict(self.values).get(name), dict(self.defaults).get(name)
        return value if value is not None and value != default else None


def _defaults(p: AnalysisParams, given: bool = False) -> dict[str, str]:
    """The default settings of ``p``'s method (:func:`_settings` of the defaults with the same method, particles and
    classifier); method and particles against the project's defaults."""
    base = _settings(AnalysisParams(method=p.method, particles=p.particles, classifier=p.classifier), given)
    top = _settings(AnalysisParams())
    return {**base, "method": top["method"], "particles": top["particles"]}


def param_differences(analyses: dict[str, Analysis]) -> list[ParamDifference]:
    """The settings (as requested by each run) that are not the same for all the compared analyses.

    Parameters
    ----------
    analyses : {electrode name: Analysis}

    Returns
    -------
    list of ParamDifference
        In the order of the settings; empty when every analysis used the same settings.
    """
    settings = {name: _settings(a.requested, phases_given(a)) for name, a in analyses.items()}
    defaults = {name: _defaults(a.requested, phases_given(a)) for name, a in analyses.items()}
    keys = [k for k in SETTINGS_ORDER if any(k in s for s in settings.values())]
    out = []
    for key in keys:
        values = tuple((name, s.get(key)) for name, s in settings.items())
        if len({v for _, v in values}) > 1:
            out.append(ParamDifference(key, values, tuple((n, defaults[n].get(key)) for n in settings)))
    return out


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def differences_sentence(diffs: list[ParamDifference]) -> str:
    """The differences in plain words: ``"cycled-1C used h = 0.75 µm and thresholds 0.31 / 0.62 (grey); the others
    used the defaults."`` (empty when there are none)."""
    if not diffs:
        return ""
    names = [n for n, _ in diffs[0].values]
    own: dict[str, list[str]] = {n: [] for n in names}
    for d in diffs:
        for name in names:
            if (v := d.own(name)) is not None:
                own[name].append(v)
    parts = [f"{n} used {_join(w)}" for n, w in own.items() if w]
    plain = [n for n, w in own.items() if not w]
    if plain:
        who = "the others" if parts and len(plain) > 1 else _join(plain)
        parts.append(f"{who} used the defaults")
    return "; ".join(parts) + "."


def dimensions_sentence(analyses: dict[str, Analysis]) -> str | None:
    """A sentence where single slices (2D images, :mod:`core.slices`) are compared with volumes, else None
    (:func:`core.comparison.dimensions_sentence`, the headless comparison's words too)."""
    from core.comparison import dimensions_sentence as words

    return words({name: recorded_single_slice(a.provenance.get("input_shape")) for name, a in analyses.items()})
