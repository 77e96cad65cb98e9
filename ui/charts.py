"""Altair chart builders (no streamlit import).  Every axis names its unit."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from .render import DETACHMENT_CMAP, DETACHMENT_RANGE, PHASE_HEX

DETACHMENT_TITLE = "detachment index (0–1)"
GROUP_SCHEME = "tableau10"  # categorical colours of electrodes
DETACHMENT_LONG = "detachment index (pore share of the particle's open interface, 0–1)"

_TITLES = {
    "detachment": DETACHMENT_TITLE,
    "depth_frac": "depth (0 = separator side, 1 = current collector)",
    "equiv_diameter_um": "equivalent diameter (µm)",
    "volume_um3": "volume (µm³)",
    "solid_volume_um3": "solid volume (µm³)",
    "surface_area_um2": "surface area (µm²)",
    "sphericity": "sphericity (–, 1 = sphere)",
    "crack_fraction": "crack fraction (share of particle volume)",
    "n_voxels": "size (voxels)",
    "label": "particle label (id)",
}


def metric_title(column: str) -> str:
    """Axis title with units for a particle-table column."""
    if column in _TITLES:
        return _TITLES[column]
    name = column
    for suffix, unit in (("_um3", "µm³"), ("_um2", "µm²"), ("_um", "µm")):
        if name.endswith(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ')} ({unit})"
    if name.startswith("frac_"):
        return f"share of surface facing {name[5:]} (0–1)"
    return name.replace("_", " ")


def grey_histogram(hist: pd.DataFrame, low: float, high: float, *, log: bool = False) -> alt.Chart:
    """Histogram of grey values with the two thresholds as vertical rules."""
    h = hist.copy()
    h["count_plot"] = h["count"]
    bars = alt.Chart(h).mark_bar(color="#888888", opacity=0.85).encode(
        x=alt.X("grey_lo:Q", bin="binned", title="grey value (scanner units)"),
        x2="grey_hi:Q",
        # symlog: log-like and still draws empty bins (a log scale drops bars that start at 0)
        y=alt.Y("count_plot:Q", title="voxels in sample (count, log scale)" if log else "voxels in sample (count)",
                scale=alt.Scale(type="symlog") if log else alt.Undefined),
        tooltip=[alt.Tooltip("grey_lo:Q", title="from", format=".0f"), alt.Tooltip("grey_hi:Q", title="to", format=".0f"),
                 alt.Tooltip("count:Q", title="voxels")],
    )
    rules = pd.DataFrame({
        "value": [low, high],
        "threshold": ["pore | CBD", "CBD | NMC"],
        "colour": [PHASE_HEX[1], PHASE_HEX[2]],
    })
    rule = alt.Chart(rules).mark_rule(strokeWidth=3).encode(
        x="value:Q",
        color=alt.Color("threshold:N", scale=alt.Scale(domain=list(rules["threshold"]), range=list(rules["colour"])),
                        legend=alt.Legend(title="threshold", orient="top")),
        tooltip=[alt.Tooltip("threshold:N"), alt.Tooltip("value:Q", format=".1f", title="grey value")],
    )
    return (bars + rule).properties(height=260)


def _group_colour(df: pd.DataFrame, color: str) -> alt.Color:
    """One colour per group, legend in the order the groups first appear."""
    order = list(dict.fromkeys(df[color].tolist()))
    return alt.Color(f"{color}:N", title=color, scale=alt.Scale(scheme=GROUP_SCHEME, domain=order),
                     sort=order)


def distribution(df: pd.DataFrame, metric: str, kind: str = "histogram", *, color: str = "electrode",
                 bins: int = 30) -> alt.Chart:
    """Overlaid distributions of ``metric`` per ``color`` group: histogram (share per bin) or ECDF."""
    d = df[[color, metric]].copy()
    d = d[np.isfinite(d[metric].astype(float))]
    title = metric_title(metric)
    colour = _group_colour(d, color)
    if kind == "ecdf":
        chart = alt.Chart(d).transform_window(
            ecdf="cume_dist()", sort=[{"field": metric}], groupby=[color]
        ).mark_line(interpolate="step-after", strokeWidth=2.5).encode(
            x=alt.X(f"{metric}:Q", title=title),
            y=alt.Y("ecdf:Q", title="share of particles ≤ value (ECDF, 0–1)", scale=alt.Scale(domain=[0, 1])),
            color=colour,
            tooltip=[alt.Tooltip(f"{color}:N"), alt.Tooltip(f"{metric}:Q", format=".3g"),
                     alt.Tooltip("ecdf:Q", format=".2f")],
        )
    else:
        lo, hi = (float(d[metric].min()), float(d[metric].max())) if len(d) else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, bins + 1)
        rows = []
        for name, g in d.groupby(color, sort=False):
            counts, _ = np.histogram(g[metric].astype(float), bins=edges)
            share = counts / max(counts.sum(), 1)
            rows.append(pd.DataFrame({color: name, "bin_lo": edges[:-1], "bin_hi": edges[1:], "share": share,
                                      "count": counts}))
        h = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
            columns=[color, "bin_lo", "bin_hi", "share", "count"])
        chart = alt.Chart(h).mark_bar(opacity=0.45, binSpacing=0).encode(
            x=alt.X("bin_lo:Q", bin="binned", title=title),
            x2="bin_hi:Q",
            y=alt.Y("share:Q", title="share of particles per bin (0–1)", stack=None),
            color=colour,
            tooltip=[alt.Tooltip(f"{color}:N"), alt.Tooltip("bin_lo:Q", format=".3g", title="from"),
                     alt.Tooltip("bin_hi:Q", format=".3g", title="to"), alt.Tooltip("count:Q", title="particles")],
        )
    return chart.properties(height=300)


def scatter(df: pd.DataFrame, x: str, y: str = "detachment", *, color: str = "electrode") -> alt.Chart:
    """Scatter of two particle metrics, one colour per group."""
    d = df[[color, x, y, "label"]].copy()
    d = d[np.isfinite(d[x].astype(float)) & np.isfinite(d[y].astype(float))]
    return alt.Chart(d).mark_circle(size=28, opacity=0.55).encode(
        x=alt.X(f"{x}:Q", title=metric_title(x)),
        y=alt.Y(f"{y}:Q", title=metric_title(y)),
        color=_group_colour(d, color),
        tooltip=[alt.Tooltip(f"{color}:N"), alt.Tooltip("label:Q", title="particle"),
                 alt.Tooltip(f"{x}:Q", format=".3g"), alt.Tooltip(f"{y}:Q", format=".3g")],
    ).properties(height=300)


def colorbar(title: str = DETACHMENT_TITLE, vmin: float = DETACHMENT_RANGE[0], vmax: float = DETACHMENT_RANGE[1],
             scheme: str = DETACHMENT_CMAP, *, nan_note: bool = True) -> alt.Chart:
    """A horizontal colour bar (the same scale as the slice images)."""
    v = np.linspace(vmin, vmax, 101)
    d = pd.DataFrame({"v0": v[:-1], "v1": v[1:], "mid": (v[:-1] + v[1:]) / 2, "bar": "scale"})
    chart = alt.Chart(d).mark_rect().encode(
        x=alt.X("v0:Q", title=title + ("; grey = no open interface" if nan_note else ""),
                scale=alt.Scale(domain=[vmin, vmax], nice=False), axis=alt.Axis(tickCount=11, grid=False)),
        x2="v1:Q",
        y=alt.Y("bar:N", axis=None),  # one band: the rectangles fill the plot height
        color=alt.Color("mid:Q", scale=alt.Scale(scheme=scheme, domain=[vmin, vmax]), legend=None),
    )
    # the height includes the axis and its title (Streamlit sizes charts with autosize "fit")
    return chart.properties(height=100, width="container")


def phase_legend_html() -> str:
    """Inline HTML legend of the phase colours."""
    names = {0: "pore", 1: "CBD (carbon-binder)", 2: "NMC particles"}
    items = [
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{PHASE_HEX[c]};'
        f'border:1px solid #444;margin:0 0.3em 0 0.9em;vertical-align:middle"></span>{names[c]}'
        for c in (0, 1, 2)
    ]
    return "<div style='font-size:0.9em'>" + "".join(items) + "</div>"
