"""The 3D page's view of one particle, face by face: where on its surface it faces pore (detached), CBD (attached),
another particle or the volume's edge (:func:`core.surface.particle_faces`)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.workspace import Analysis, Sample, Workspace

from . import cache, state
from .state import PERSIST, init
from .render import value_colours
from .view3d import CBD_OPACITY, CBD_OPACITY_RANGE

#: The page's two views.
SHOW_LABELS = {"all": "all particles of a depth range", "one": "one particle, face by face"}


def show_picker() -> str:
    """All particles of a depth range, or one particle face by face."""
    init(state.V3_SHOW, "all")
    return st.radio("Show", tuple(SHOW_LABELS), key=state.V3_SHOW, horizontal=True, format_func=SHOW_LABELS.get,
                    persist_state=PERSIST)


def _share(area: float, total: float) -> str:
    return f"{area / total:.0%}" if total > 0 else "–"


def faces_legend_html() -> str:
    """The colours of the faces, in a line over the view (QA walk 19: only the caption said which was which):
    the detachment scale's two ends and its grey (:data:`ui.view3d.FACE_VALUES`)."""
    pore, cbd, other = ("#%02x%02x%02x" % tuple(int(c) for c in rgb) for rgb in value_colours(
        np.array([1.0, 0.0, np.nan])))  # the detachment's colours (its scale's ends, its grey), as the view draws
    items = ((pore, "facing pore: detached"), (cbd, "facing CBD: attached"),
             (other, "facing another particle or the volume's edge: not in the detachment"))
    return "<div style='font-size:0.9em'>" + "".join(
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{hx};border:1px solid #444;'
        f'margin:0 0.3em 0 0.9em;vertical-align:middle"></span>{text}' for hx, text in items) + "</div>"


def faces_caption(out: dict, label: int) -> str:
    """What the view shows, with the shares of the faces drawn and the detachment they give; where they differ from
    the particle table's areas (faces towards a fill outside the field of view, which the table counts as the
    volume's edge), both."""
    a, t = out["areas"], out["table"]
    total = sum(a.values())
    det = out["detachment"]
    text = (f"Particle {label}: {out['n_faces']:,} voxel faces, each coloured as the detachment counts it: facing "
            f"pore (detached, yellow) {_share(a['pore'], total)}, facing CBD (attached, purple) "
            f"{_share(a['cbd'], total)}; grey: facing another particle {_share(a['particle'], total)} or the "
            f"volume's edge {_share(a['edge'], total)}, which the detachment leaves out. Detachment = pore / (pore + "
            "CBD) faces = " + ("– (no open interface)" if det != det else f"{det:.3f}") + ". Coordinates in µm.")
    if any(abs(a[k] - t[k]) > 1e-6 * max(1.0, t[k]) for k in a):
        text += (" These faces differ from the particle table's areas (" + ", ".join(
            f"{k} {a[k]:.1f} against {t[k]:.1f} µm²" for k in a) + "): the table's are the measurement; faces "
            "towards a fill outside the field of view are drawn as facing pore here and counted as the volume's edge "
            "there.")
    return text


def section(ws: Workspace, sample: Sample, analysis: Analysis) -> None:
    """Pick a particle (the Particles page's pick, where it made one) and draw its surface face by face."""
    ref = cache.ResultRef.of(ws, analysis)
    table = cache.table(ref)
    if table.empty:
        st.info("This analysis found no particle.")
        return
    labels = [int(v) for v in table["label"]]
    det_of = dict(zip(labels, table["detachment"].to_numpy(float)))
    key, seen = state.k(state.V3_PARTICLE, sample.id), state.k(state.V3_PICK_SEEN, sample.id)
    picked = st.session_state.get(state.k(state.PART_PICKED, sample.id))
    if picked in det_of and st.session_state.get(seen) != picked:  # a new pick on the Particles page wins
        st.session_state[key] = picked
    elif st.session_state.get(key) not in det_of:  # else this page's own pick, else the largest particle
        st.session_state[key] = int(table.loc[table["volume_um3"].idxmax(), "label"])
    st.session_state[seen] = picked  # (QA walk 19: the Particles page's pick never reached this page)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    label = c1.selectbox("Particle", labels, key=key, persist_state=PERSIST,
                         format_func=lambda v: f"particle {v} (detachment "
                                               + ("–" if det_of[v] != det_of[v] else f"{det_of[v]:.2f}") + ")",
                         help="The particle picked on the Particles page, where one was; else the largest.")
    init(state.V3_MODE, "interactive")
    init(state.V3_CBD, False)
    init(state.V3_CBD_OPACITY, CBD_OPACITY)
    mode = c2.radio("View", ("interactive", "image"), key=state.V3_MODE, persist_state=PERSIST,
                    format_func={"interactive": "interactive (rotate, zoom)", "image": "static image"}.get)
    show_cbd = c3.checkbox("Show the CBD around it", key=state.V3_CBD, persist_state=PERSIST,
                           help="The carbon-binder domain in the box around the particle (as far again as the "
                                "particle's own extent on each side), as a translucent grey surface.")
    opacity = c4.slider("CBD opacity", *CBD_OPACITY_RANGE, key=state.V3_CBD_OPACITY, step=0.05,
                        persist_state=PERSIST, disabled=not show_cbd)
    spacing = tuple(float(v) for v in (analysis.provenance.get("spacing_um") or sample.spacing))
    view_interactive = mode == "interactive"
    out = cache.particle3d(ref, int(label), spacing, view_interactive, bool(show_cbd), round(float(opacity), 2))
    st.html(faces_legend_html())
    if out["html"] is not None:
        st.iframe(out["html"], height=640)
    else:
        if out["error"] and view_interactive:
            st.warning(f"The interactive view is not available ({out['error']}); showing a static image instead.")
        st.image(out["png"], width="stretch")
    st.caption(faces_caption(out, int(label)) + (" The CBD around it: a translucent grey surface, opacity "
                                                 f"{opacity:.2f}." if show_cbd else ""))
