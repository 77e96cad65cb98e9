"""3D page: one merged mesh coloured by detachment (+ an optional translucent CBD mesh), vtk.js page in an iframe,
PNG fallback."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import TIMEOUT, nested_dicts, no_exception, page

PAGE = page("5_3d.py")


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
    _assert_standalone(html)
    cap = next(c.value for c in at.caption if "triangles" in c.value)
    n_tri = int(cap.split(" particles, ")[1].split(" triangles")[0].replace(",", ""))
    assert 0 < n_tri <= 100_000


def _assert_standalone(html: str) -> None:
    """Nothing loaded from elsewhere: no script with a ``src``, no ``<link>``, no URL in a src/href or CSS."""
    import re

    tags = re.findall(r"<(?:script|link|img|iframe|embed|object|source|audio|video)\b[^>]*>", html, re.I)
    # a data: or blob: URI is inline; any other src / href / data attribute loads a file
    ref = r"""\b(?:src|href|data)\s*=\s*(?!["']?\s*(?:data|blob):)"""
    external = [t for t in tags if re.search(ref, t, re.I) or t.lower().startswith("<link")]
    assert not external, f"the 3D page loads from elsewhere: {external[:3]}"
    urls = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//[^"'\s>]+""", html, re.I)
    urls += re.findall(r"(?:@import|url\()\s*[\"']?(?:https?:)?//[^\"')\s]+", html, re.I)
    assert not urls, f"the 3D page refers to remote resources: {urls[:3]}"


def test_standalone_check_catches_remote_resources():
    doc = "<!doctype html><html><head>{}</head><body></body></html>"
    _assert_standalone(doc.format('<script>var a = 1;</script><img src="data:image/png;base64,AAAA">'))
    for bad in ('<script src="https://cdn.example.org/vtk.js"></script>', '<script src="vtk.js"></script>',
                '<link rel="stylesheet" href="https://fonts.example.org/a.css">',
                "<style>@import url('//fonts.example.org/a.css');</style>"):
        with pytest.raises(AssertionError):
            _assert_standalone(doc.format(bad))


def _scene_index(html: str) -> dict:
    """The vtk.js scene of the page (``index.json``, zipped, in base64)."""
    import base64
    import io
    import json
    import re
    import zipfile

    blob = re.search(r'base64Str = "([^"]+)"', html)
    assert blob, "no vtk.js scene in the page"
    return json.loads(zipfile.ZipFile(io.BytesIO(base64.b64decode(blob.group(1)))).read("index.json"))


def _scene_actors(html: str) -> list[tuple[float, list[float]]]:
    """(opacity, colour) of every actor property in the vtk.js scene."""
    box = lambda d: d.get("type") == "vtkCubeAxesActor"  # noqa: E731  (the box with ticks in µm, not a surface)
    return [(float(o["opacity"]), [float(c) for c in o["color"]])
            for o in nested_dicts(_scene_index(html), skip=box) if "opacity" in o and "color" in o]


def _caption(at) -> str:
    return next(c.value for c in at.caption if "triangles" in c.value)


def _counts(cap: str) -> tuple[int, int | None]:
    """(particle triangles, CBD triangles or None) from the caption."""
    n_tri = int(cap.split(" particles, ")[1].split(" triangles")[0].replace(",", ""))
    n_cbd = None
    if "CBD (carbon-binder)" in cap:
        n_cbd = int(cap.split("translucent grey surface, ")[1].split(" triangles")[0].replace(",", ""))
    return n_tri, n_cbd


def test_cbd_surface_toggle_changes_both_views(seeded_ws):
    s, at = _open(seeded_ws, "pristine")
    at.run()
    no_exception(at)
    assert at.checkbox(key=state.V3_CBD).value is False  # off by default
    assert at.slider(key=state.V3_CBD_OPACITY).disabled
    html_off = at.get("iframe")[0].proto.srcdoc
    cap_off = _caption(at)
    assert "CBD" not in cap_off
    assert [op for op, _ in _scene_actors(html_off)] == [1.0]  # the particles only

    # interactive: one more, translucent grey actor; the budget is shared (CBD at most a third)
    at.checkbox(key=state.V3_CBD).check().run()
    no_exception(at)
    html_on = at.get("iframe")[0].proto.srcdoc
    cap_on = _caption(at)
    assert html_on != html_off
    assert "CBD" in cap_on and "opacity 0.20" in cap_on
    n_tri, n_cbd = _counts(cap_on)
    assert 0 < n_cbd <= 100_000 // 3 and 0 < n_tri and n_tri + n_cbd <= 100_000
    actors = _scene_actors(html_on)
    assert sorted(op for op, _ in actors) == [0.2, 1.0]
    grey = next(col for op, col in actors if op == 0.2)
    assert grey and max(grey) - min(grey) < 1e-6  # neutral grey

    # static image: the CBD and its opacity change the picture (an image's URL is the hash of its bytes)
    at.radio(key=state.V3_MODE).set_value("image").run()
    no_exception(at)
    [img] = at.image
    png_on = img.value[0]
    at.slider(key=state.V3_CBD_OPACITY).set_value(0.6).run()
    no_exception(at)
    png_opaque = at.image[0].value[0]
    assert "opacity 0.60" in _caption(at) and png_opaque != png_on
    at.checkbox(key=state.V3_CBD).uncheck().run()
    no_exception(at)
    png_off = at.image[0].value[0]
    assert png_off not in (png_on, png_opaque)
    assert "CBD" not in _caption(at)


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


def test_cbd_mesh_within_its_budget_and_crop():
    from core.synth import ElectrodeParams, make_electrode
    from ui.view3d import phase_mesh, split_budget

    assert split_budget(60_000, False) == (0, 60_000)
    assert split_budget(60_000, True) == (20_000, 40_000)
    e = make_electrode(ElectrodeParams(shape=(32, 32, 32), spacing=(0.5, 0.5, 0.5), radius_median_um=3), rng=4)
    mesh, info = phase_mesh(e.phases, e.spacing, 1, max_triangles=3_000)
    assert 0 < info.n_triangles == mesh.n_cells <= 3_000
    # a depth crop (z 10..19) puts the mesh at its place in µm (x, y, z order)
    crop = (slice(10, 20), slice(None), slice(None))
    sub, _ = phase_mesh(e.phases, e.spacing, 1, max_triangles=3_000, crop=crop)
    assert 10 * 0.5 - 1 <= sub.bounds[4] and sub.bounds[5] <= 20 * 0.5 + 1
    empty, info0 = phase_mesh(e.phases, e.spacing, 7)
    assert empty.n_cells == 0 and info0.n_triangles == 0


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


def test_particle_count_is_of_the_labels_and_the_drawn_ones_are_counted_apart():
    from ui.view3d import particle_mesh

    lab = np.zeros((40, 40, 40), np.int32)
    zz, yy, xx = np.mgrid[:40, :40, :40]
    lab[(zz - 20) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 < 15 ** 2] = 1
    lab[2, 2, 2], lab[37, 37, 2] = 2, 3  # one voxel each: the strided contour of a tight budget misses them
    vals = np.array([np.nan, 0.1, 0.5, 0.9])
    _, full = particle_mesh(lab, (1.0, 1.0, 1.0), vals, max_triangles=200_000)
    assert (full.n_particles, full.n_drawn) == (3, 3)
    _, tight = particle_mesh(lab, (1.0, 1.0, 1.0), vals, max_triangles=300)
    assert tight.n_particles == 3 and tight.n_drawn < 3


def test_a_single_slice_has_no_3d_view(empty_ws, tmp_path):
    from core.inputs import FileInput
    from core.io import save_tiff
    from core.runner import run_analysis
    from core.synth import demo_electrode

    e = demo_electrode("pristine", rng=0, shape=(16, 64, 64))
    save_tiff(tmp_path / "slice.tif", e.greyscale[8:9], e.spacing)
    s = empty_ws.add_sample("slice", FileInput(tmp_path / "slice.tif"), spacing=e.spacing, axis=1)
    with pytest.warns(UserWarning, match="single slice"):
        run_analysis(empty_ws, s.id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert any("single slice (a 2D image): it has no 3D surfaces" in i.value for i in at.info)
    assert not at.get("iframe")


def test_a_depth_maps_onto_the_electrode_slices_where_the_analysis_found_them():
    """depth 0..1 runs over the electrode's slices (an analysis's depth_extent), as its table's depth_frac does: the
    Compare page's slice at a depth and the 3D view's depth range; 0-1 in 3D is the whole volume."""
    from ui.cache import _depth_crop
    from ui.render import depth_index

    assert depth_index(0.5, 101, "start") == 50 and depth_index(0.0, 101, "end") == 100  # over the volume
    assert depth_index(0.0, 101, "start", (20, 100)) == 20 and depth_index(0.5, 101, "start", (20, 100)) == 60
    assert depth_index(0.0, 101, "end", (0, 80)) == 80 and depth_index(1.0, 101, "end", (0, 80)) == 0
    assert _depth_crop((101, 8, 8), 0, (0.0, 1.0), "start", (20, 100))[0] == slice(0, 101)
    assert _depth_crop((101, 8, 8), 0, (0.0, 0.5), "start", (20, 100))[0] == slice(20, 61)
    assert _depth_crop((8, 8, 101), 2, (0.5, 1.0), "start", None)[2] == slice(50, 101)


def test_a_coarsely_sampled_view_offers_a_thinner_slab_drawn_finer(seeded_ws, monkeypatch):
    """A big volume's particles sampled every 5 voxels come out as shards (the real calendered volume at its whole
    depth): the page offers the slab the same budget draws about every 2 voxels (there: 0.40-0.55, sampled every 2),
    and one click shows it."""
    from ui import cache, forms

    assert forms.finer_depth_range((0.0, 1.0), 5) == (0.4, 0.55)
    assert forms.finer_depth_range((0.0, 1.0), 2) is None and forms.finer_depth_range((0.4, 0.45), 9) is None
    real = cache.view3d

    def coarse(ref, params, *a, **kw):
        out = dict(real(ref, params, *a, **kw))
        if params.depth_range == (0.0, 1.0):
            out["stride"] = 5
        return out

    monkeypatch.setattr(cache, "view3d", coarse)
    s, at = _open(seeded_ws, "pristine")
    at.run()
    no_exception(at)
    assert any("A slab of depth 0.40–0.55 fits the same budget" in i.value for i in at.info)
    [button] = [b for b in at.button if b.label == "Show depth 0.40–0.55 finer"]
    button.click().run()
    no_exception(at)
    assert at.slider(key=state.V3_DEPTH).value == (0.4, 0.55)
    assert not any("A slab of depth" in i.value for i in at.info)


def test_the_view_has_a_box_with_ticks_in_micrometres():
    """The scale of the view: a box around the particles with ticks and titles in µm (not "x (m)", metres,
    which VTK's built-in font makes of "µm"), in the static image and the vtk.js page."""
    import pyvista as pv

    import ui.view3d as v3

    assert v3.axis_titles("font.ttf") == ("x (µm)", "y (µm)", "z (µm)")
    assert v3.axis_titles(None) == ("x (um)", "y (um)", "z (um)")
    assert v3._font_file() is not None  # pyvista's matplotlib brings DejaVu Sans
    mesh = pv.Sphere(radius=5.0, center=(20.0, 10.0, 3.0))
    mesh.cell_data["detachment"] = np.zeros(mesh.n_cells)
    p = v3._plotter(mesh, window_size=(300, 240))
    try:
        axes = p.renderer.cube_axes_actor
        assert axes is not None
        assert (axes.GetXTitle(), axes.GetYTitle(), axes.GetZTitle()) == ("x (µm)", "y (µm)", "z (µm)")
        np.testing.assert_allclose(axes.GetBounds(), mesh.bounds, atol=1e-6)
        assert axes.GetTitleTextProperty(0).GetFontFile().endswith("DejaVuSans.ttf")
    finally:
        p.close()
    empty = v3._plotter(pv.PolyData(), window_size=(300, 240))  # nothing drawn: no box
    try:
        assert empty.renderer.cube_axes_actor is None
    finally:
        empty.close()
    import json

    scene = json.dumps(_scene_index(v3.export_html(mesh)), ensure_ascii=False)
    assert all(f"{a} (µm)" in scene for a in "xyz")


def _axis_labels(axes, i: int) -> list[str]:
    arr = axes.GetAxisLabels(i)
    return [arr.GetValue(k) for k in range(arr.GetNumberOfValues())]


def test_the_box_ticks_start_at_the_volume_origin_on_round_steps_and_never_overlap():
    """QA: the static image's ticks read "-0.4, 15.5, 31.4, 47.4" (the surfaces reach a voxel below the first
    voxel's centre) with "47.4" twice at the front corner; the interactive view read 0, 10, ... 40."""
    import pickle

    from core.synth import ElectrodeParams, make_electrode

    import ui.view3d as v3

    assert v3.tick_labels(0.0, 47.36) == ["0", "10", "20", "30", "40"]
    assert v3.tick_labels(0.0, 40.2)[-1] == ""  # at the corner where x and y end together: no label
    assert v3.tick_labels(0.0, 47.36, first=False)[0] == ""
    assert v3.tick_labels(15.92, 39.4) == ["15.9", "20.9", "25.9", "30.9", "35.9"]  # from a crop's origin
    assert v3.tick_labels(15.92, 39.4, min_gap=9.5) == ["15.9", "", "25.9", "", "35.9"]  # a short axis thinned
    e = make_electrode(ElectrodeParams(shape=(40, 40, 40), spacing=(0.4, 0.4, 0.4), radius_median_um=3), rng=4)
    vals = np.linspace(0, 1, int(e.labels.max()) + 1)
    for crop, z0 in ((None, 0.0), ((slice(10, 30), slice(None), slice(None)), 4.0)):
        mesh, _ = v3.particle_mesh(e.labels, e.spacing, vals, max_triangles=20_000, crop=crop)
        cbd, _ = v3.phase_mesh(e.phases, e.spacing, 1, max_triangles=5_000, crop=crop)
        assert mesh.bounds[0] < 0  # the surfaces reach below the first voxel's centre
        np.testing.assert_allclose(v3.volume_origin(mesh, cbd), [0.0, 0.0, z0], atol=1e-6)
        p = v3._plotter(mesh, cbd, window_size=(300, 240))
        try:
            axes = p.renderer.cube_axes_actor
            b = axes.GetBounds()
            np.testing.assert_allclose(b[::2], [0.0, 0.0, z0], atol=1e-6)  # the box starts at the origin
            x, y, z = (_axis_labels(axes, i) for i in range(3))
            # 15.6 µm a side: ticks every 2 µm, labelled every 4 (at most about 5 labels a side)
            assert [t for t in x if t] == ["0", "4", "8", "12"]
            assert y[0] == "" and [t for t in y if t] == ["4", "8", "12"]  # y's 0 would sit on z's first label
            assert z[0] == ("0" if z0 == 0 else "4")  # the crop's origin (slice 10 of 0.4 µm)
            for labels in (x, y, z):
                assert not any(t.startswith("-") for t in labels)
        finally:
            p.close()
    # the origin moves with the mesh (a chunked analysis's strided mesh is translated after) and is pickled along
    moved = pickle.loads(pickle.dumps(mesh.translate((1.0, 2.0, 3.0), inplace=False)))
    np.testing.assert_allclose(v3.volume_origin(moved), [1.0, 2.0, z0 + 3.0], atol=1e-6)


def test_one_particle_face_by_face_is_the_particles_page_pick(seeded_ws):
    """Show: one particle, face by face: the particle picked on the Particles page, its faces' shares and
    detachment those of its table row (the areas the table sums), drawn as a static image or a vtk.js page."""
    s, at = _open(seeded_ws)
    a = seeded_ws.latest_analysis(s.id)
    table = seeded_ws.load_table(a)
    row = table.loc[table["detachment"].notna()].iloc[len(table) // 3]
    at.session_state[state.k(state.PART_PICKED, s.id)] = int(row["label"])  # as the Particles page leaves it
    at.session_state[state.V3_SHOW] = "one"
    at.session_state[state.V3_MODE] = "image"
    at.run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.V3_PARTICLE, s.id)).value == int(row["label"])
    assert len(at.image) == 1 and not at.get("iframe")
    cap = next(c.value for c in at.caption if "voxel faces" in c.value)
    assert f"Particle {int(row['label'])}: " in cap and f"= {row['detachment']:.3f}." in cap
    total = row[["area_pore_um2", "area_cbd_um2", "area_particle_um2", "area_edge_um2"]].sum()
    assert f"facing pore (detached, yellow) {row['area_pore_um2'] / total:.0%}" in cap
    assert "differ from the particle table" not in cap
    legend = at.get("html")[0].proto.body
    assert "#fde725" in legend and "facing pore: detached" in legend and "facing CBD: attached" in legend
    # another particle, interactive: a vtk.js page of the faces, standalone
    other = int(table.loc[table["volume_um3"].idxmax(), "label"])
    at.selectbox(key=state.k(state.V3_PARTICLE, s.id)).set_value(other).run()
    at.radio(key=state.V3_MODE).set_value("interactive").run()
    no_exception(at)
    [frame] = at.get("iframe")
    _assert_standalone(frame.proto.srcdoc)
    assert any(f"Particle {other}: " in c.value for c in at.caption)
    # this page's own pick stays while the Particles page's pick is the one it took up; a new pick there wins
    at.run()
    assert at.selectbox(key=state.k(state.V3_PARTICLE, s.id)).value == other
    newer = int(table.loc[table["detachment"].notna()].iloc[0]["label"])
    at.session_state[state.k(state.PART_PICKED, s.id)] = newer
    at.run()
    no_exception(at)
    assert at.selectbox(key=state.k(state.V3_PARTICLE, s.id)).value == newer


def test_the_particles_page_keeps_its_pick_for_the_3d_page(seeded_ws):
    """QA walk 19: a particle picked on the Particles page never reached the 3D page (its widget's value went with
    the page): the pick is kept in a plain key, and the selectbox keeps it when the page comes back."""
    s = next(x for x in seeded_ws.list_samples() if x.name == "cycled-5C")
    table = seeded_ws.load_table(seeded_ws.latest_analysis(s.id))
    label = int(table.iloc[len(table) // 2]["label"])
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.selectbox(key=state.k(state.PART_SELECT, s.id)).select(label).run()
    no_exception(at)
    assert at.session_state[state.k(state.PART_PICKED, s.id)] == label
    assert any("the **3D** page" in c.value for c in at.caption)
