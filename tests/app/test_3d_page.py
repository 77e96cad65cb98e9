"""3D page: one merged mesh coloured by detachment, vtk.js page in an iframe, PNG fallback."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import TIMEOUT, no_exception, page

PAGE = page("5_3D.py")


def _open(ws, name="cycled-5C"):
    s = next(x for x in ws.list_samples() if x.name == name)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    return s, at


def test_interactive_vtkjs_page(seeded_ws):
    s, at = _open(seeded_ws)
    at.run()
    no_exception(at)
    [frame] = at.get("iframe")
    html = frame.proto.srcdoc
    assert html.lstrip().lower().startswith("<!doctype html") and "vtk" in html.lower()
    assert "http://" not in html.split("<body", 1)[0] or "cdn" not in html.lower()  # standalone, no CDN
    cap = next(c.value for c in at.caption if "triangles" in c.value)
    n_tri = int(cap.split(" particles, ")[1].split(" triangles")[0].replace(",", ""))
    assert 0 < n_tri <= 100_000


def test_static_image_and_fallback_when_export_fails(seeded_ws, monkeypatch):
    import ui.view3d as v3

    def broken(mesh, *, timeout=120.0):
        raise RuntimeError("the interactive export failed: no trame here")

    monkeypatch.setattr(v3, "export_html", broken)
    s, at = _open(seeded_ws, "pristine")
    at.run()
    no_exception(at)
    assert not at.get("iframe")
    assert any("not available" in w.value and "no trame here" in w.value for w in at.warning)
    [img] = at.image
    # the depth range crops the mesh: fewer particles in a thin slab
    n_all = int(next(c.value for c in at.caption if "triangles" in c.value).split(" particles")[0])
    at.slider(key=state.V3_DEPTH).set_value((0.0, 0.3)).run()
    at.radio(key=state.V3_MODE).set_value("image").run()
    no_exception(at)
    assert not any("not available" in w.value for w in at.warning)  # a static image was asked for
    n_slab = int(next(c.value for c in at.caption if "triangles" in c.value).split(" particles")[0])
    assert 0 < n_slab < n_all


def test_mesh_colours_follow_the_table():
    from core.synth import ElectrodeParams, make_electrode
    from ui.view3d import particle_mesh

    e = make_electrode(ElectrodeParams(shape=(32, 32, 32), spacing=(0.5, 0.5, 0.5), radius_median_um=3), rng=4)
    vals = np.full(int(e.labels.max()) + 1, np.nan)
    vals[e.table["label"]] = e.table["detachment"]
    mesh, info = particle_mesh(e.labels, e.spacing, vals, max_triangles=5_000)
    assert 0 < info.n_triangles <= 5_000 and info.n_particles > 0
    lab = np.asarray(mesh.cell_data["label"])
    np.testing.assert_array_equal(np.asarray(mesh.cell_data["detachment"]), vals[lab])
    # coordinates in µm: the mesh spans the volume
    assert mesh.bounds[1] <= 32 * 0.5 + 1e-6 and mesh.bounds[1] > 10
