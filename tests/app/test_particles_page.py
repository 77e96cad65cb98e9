"""Particles page: separation form with progress, count, table + CSV, particle selection, coloured outlines."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import TIMEOUT, classifier_sample, no_exception, page

PAGE = page("3_particles.py")


def _open(ws, name="cycled-5C"):
    s = next(x for x in ws.list_samples() if x.name == name)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    return s, at.run()


def _page_of(sample):
    """The page run on ``sample``, without an exception."""
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample.id
    at.run()
    no_exception(at)
    return at


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_table_count_and_csv(seeded_ws):
    s, at = _open(seeded_ws)
    no_exception(at)
    a = seeded_ws.latest_analysis(s.id)
    table = seeded_ws.load_table(a)
    assert int(_metric(at, "particles")) == len(table) == a.n_particles > 0
    assert _metric(at, "median detachment") == f"{table['detachment'].median():.2f}"
    shown = at.dataframe[0].value
    assert list(shown["label"]) == list(table["label"])
    assert "detachment" in shown.columns and "equiv_diameter_um" in shown.columns
    dl = at.download_button[0]  # the export section's buttons follow (tests/app/test_exports.py)
    assert dl.proto.label.startswith("Download the table (CSV)")
    # the slice image and the detachment colour bar with its unit
    assert len(at.image) == 1 and "coloured by detachment" in at.image[0].proto.imgs[0].caption
    import json

    bar = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "detachment index" in bar["layer"][0]["encoding"]["x"]["title"]


def test_select_a_particle_shows_its_row_and_jumps_to_it(seeded_ws):
    s, at = _open(seeded_ws)
    table = seeded_ws.load_table(seeded_ws.latest_analysis(s.id))
    row = table.iloc[len(table) // 2]
    label = int(row["label"])
    axis_key, index_key = state.k(state.PART_AXIS, s.id), state.k(state.PART_INDEX, s.id)
    at.selectbox(key=state.k(state.PART_SELECT, s.id)).select(label).run()
    no_exception(at)
    z = int(round(row["centroid_z_um"] / s.spacing[0]))
    assert at.slider(key=state.k(index_key, 0)).value == z
    assert f"particle {label} highlighted" in at.image[0].proto.imgs[0].caption
    shown = at.dataframe[1].value  # the selected row, transposed
    assert shown.loc["label", "value"] == str(label)
    assert float(shown.loc["detachment", "value"]) == pytest.approx(row["detachment"], rel=5e-4, nan_ok=True)
    # the y orientation jumps too
    at.radio(key=axis_key).set_value(1).run()
    at.selectbox(key=state.k(state.PART_SELECT, s.id)).select(None).run()
    at.selectbox(key=state.k(state.PART_SELECT, s.id)).select(label).run()
    no_exception(at)
    assert at.slider(key=state.k(index_key, 1)).value == int(round(row["centroid_y_um"] / s.spacing[1]))


def test_run_separation_with_new_parameters(seeded_ws):
    s, at = _open(seeded_ws, "pristine")
    before = seeded_ws.latest_analysis(s.id)
    at.slider(key=state.k(state.PART_H, s.id)).set_value(2.0)
    at.slider(key=state.k(state.PART_MERGE, s.id)).set_value(0.0)
    assert at.get("form"), "the separation parameters live in an st.form"
    submit = next(b for b in at.button if b.proto.label == "Run particle separation")
    submit.click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id
    assert after.params["separation"]["h_um"] == 2.0 and after.params["separation"]["merge_ratio"] == 0.0
    assert after.provenance["phases_from_analysis"] == before.id and after.provenance["presegmented"]
    assert after.params["segment"] == before.resolved_params["segment"]
    assert int(_metric(at, "particles")) == after.n_particles
    assert _metric(at, "analysis") == f"#{after.id}"
    assert any(f"Analysis {after.id} done: {after.n_particles} particles" in m.value for m in at.success)


def test_only_the_setting_of_the_chosen_seeds_is_shown_and_the_other_is_kept(seeded_ws):
    s, at = _open(seeded_ws, "pristine")
    k_h, k_dist, k_markers = (state.k(b, s.id) for b in (state.PART_H, state.PART_MIN_DIST, state.PART_MARKERS))
    labels = [w.proto.label for w in at.slider]
    assert any(lab.startswith("h (µm)") for lab in labels)
    assert not any(lab.startswith("Minimum seed distance") for lab in labels)
    at.session_state[k_h] = 1.25  # as a submitted form leaves it
    at.selectbox(key=k_markers).select("peaks").run()
    no_exception(at)
    labels = [w.proto.label for w in at.slider]
    assert any(lab.startswith("Minimum seed distance") for lab in labels)
    assert not any(lab.startswith("h (µm)") for lab in labels)
    at.session_state[k_dist] = 4.0
    at.selectbox(key=k_markers).select("hmaxima").run()
    no_exception(at)
    assert at.slider(key=k_h).value == 1.25  # kept while hidden
    at.selectbox(key=k_markers).select("peaks").run()
    assert at.slider(key=k_dist).value == 4.0


def test_seeds_from_the_deconvolved_greyscale_rerun_the_analysis_with_the_same_phases(seeded_ws):
    s, at = _open(seeded_ws, "cycled-1C")
    before = seeded_ws.latest_analysis(s.id)
    key = state.k(state.PART_SEEDING, s.id)
    # the default chose by the blur it measured, and the page says which
    assert at.radio(key=key).value == "auto" and before.provenance["seeding_auto"]["seeding"] == "phases"
    assert any("seeded on the NMC phase" in c.value for c in at.caption)
    at.radio(key=key).set_value("deconvolved").run()
    next(b for b in at.button if b.proto.label == "Run particle separation").click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done"
    # a whole analysis of the greyscale (the seeds need it), not a re-separation of stored phases
    assert after.params["seeding"] == "deconvolved" and not after.provenance["presegmented"]
    import numpy as np

    assert np.array_equal(seeded_ws.load_phases(after.id), seeded_ws.load_phases(before.id))
    assert at.radio(key=key).value == "deconvolved"  # the page shows what the latest analysis used
    # back to the phases: a re-separation of the stored phases again
    at.radio(key=key).set_value("phases").run()
    next(b for b in at.button if b.proto.label == "Run particle separation").click().run()
    again = seeded_ws.latest_analysis(s.id)
    assert "seeding" not in again.params and again.provenance["phases_from_analysis"] == after.id
    # "auto" after the phases: the blur needs the greyscale, so the whole analysis runs ...
    at.radio(key=key).set_value("auto").run()
    next(b for b in at.button if b.proto.label == "Run particle separation").click().run()
    no_exception(at)
    third = seeded_ws.latest_analysis(s.id)
    assert third.id > again.id and not third.provenance["presegmented"]
    assert third.provenance["seeding_auto"]["seeding"] == "phases" and third.resolved.seeding == "phases"
    # ... and "auto" again, which chose the phases: the stored phases are separated again
    next(b for b in at.button if b.proto.label == "Run particle separation").click().run()
    no_exception(at)
    last = seeded_ws.latest_analysis(s.id)
    assert last.id > third.id and last.provenance["phases_from_analysis"] == third.id


def test_an_already_segmented_sample_offers_no_greyscale_seeds(empty_ws):
    import numpy as np

    from core.runner import run_analysis

    z, y, x = np.ogrid[:24, :24, :24]
    phases = np.ones((24, 24, 24), np.uint8)  # CBD around one NMC ball, a pore slab
    phases[(z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 36] = 2
    phases[:3] = 0
    path = empty_ws.root / "phases.npy"
    np.save(path, phases)
    s = empty_ws.add_sample("seg", str(path), spacing=0.4, source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    assert s.input.presegmented
    run_analysis(empty_ws, s.id, empty_ws.load_volume(s), presegmented=True)
    at = _page_of(s)
    assert not [r for r in at.radio if r.key == state.k(state.PART_SEEDING, s.id)]
    # nor the U-Net's instance cue, which reads the greyscale (a job that could only fail before)
    assert not [r for r in at.radio if r.key == state.k(state.PART_METHOD, s.id)]
    assert any("this sample's values are phases" in c.value for c in at.caption)
    # the Samples page draws its slices in the phase colours, with their legend
    samples = AppTest.from_file(page("1_samples.py"), default_timeout=TIMEOUT)
    samples.session_state[state.SAMPLE_ID] = s.id
    samples.run()
    no_exception(samples)
    assert any("the phases in their colours" in c.value for c in samples.caption)
    assert any("NMC particles" in h.proto.body for h in samples.get("html"))


def test_isolated_specks_under_the_minimum_volume_are_pointed_out(empty_ws):
    """Three specks of 8 voxels (0.51 µm³ at 0.4 µm) in the CBD, touching no particle, beside a particle half in
    pore: the page says how many, the median detachment with and without them, and the Compare page's filter."""
    from core.metrics import isolated_specks

    from apphelpers import specks_sample

    s, a = specks_sample(empty_ws)
    table = empty_ws.load_table(a)
    assert len(table) == 4 and isolated_specks(table, 1.0).sum() == 3 and not isolated_specks(table, 0.5).any()
    big = table.loc[~isolated_specks(table, 1.0), "detachment"].iloc[0]
    assert big > 0.1
    at = _page_of(s)
    [w] = [w.value for w in at.warning if "touch no other particle" in w.value]
    assert w.startswith("3 of 4 particles are smaller than the minimum particle volume (1 µm³, a ball 1.24 µm")
    assert f"is 0.00 with them and {big:.2f} without" in w and "Smallest particle counted* to 1.24 µm" in w
    # most of the table specks: which phase is NMC is asked, and where an already-segmented sample's map is mended
    assert "check which phase is NMC (Samples page, *Phase map*). To leave them out" in w


def test_a_classifier_analysis_says_what_its_phases_do_to_the_detachment(empty_ws):
    """The particles of a brush-stroke classifier's analysis come with a line on its edge bias (the blurred
    particle-pore edge read as CBD); a threshold analysis's do not."""
    from core.runner import run_analysis
    from ui.particles_view import CLASSIFIER_DETACHMENT_NOTE

    s, _ = classifier_sample(empty_ws)
    vol = empty_ws.load_volume(s)
    at = _page_of(s)
    assert [w for w in at.warning if w.value == CLASSIFIER_DETACHMENT_NOTE]  # a warning: its report carries it
    run_analysis(empty_ws, s.id, vol)
    at.run()
    assert not [w for w in at.warning if w.value == CLASSIFIER_DETACHMENT_NOTE]


def test_without_analysis_says_what_to_do(empty_ws):
    empty_ws.add_sample("raw", "demo:pristine", spacing=0.4, source_options={"shape": [24, 24, 24], "seed": 0})
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    no_exception(at)
    assert any("no finished analysis" in i.value for i in at.info)
    assert not at.dataframe


def test_particles_by_the_model_cue_run_the_network_on_the_greyscale(seeded_ws):
    s, at = _open(seeded_ws, "cycled-1C")
    before = seeded_ws.latest_analysis(s.id)
    assert not at.slider(key=state.k(state.PART_H, s.id)).disabled
    at.radio(key=state.k(state.PART_METHOD, s.id)).set_value("model").run()
    # the watershed's seed settings do not apply to the cue: disabled, with a caption that says so
    assert at.slider(key=state.k(state.PART_H, s.id)).disabled
    assert at.selectbox(key=state.k(state.PART_MARKERS, s.id)).disabled
    assert not at.slider(key=state.k(state.PART_MERGE, s.id)).disabled
    assert any("only the merge ratio and the minimum volume" in c.value for c in at.caption)
    submit = next(b for b in at.button if b.proto.label == "Run particle separation")
    submit.click().run()
    no_exception(at)
    after = seeded_ws.latest_analysis(s.id)
    assert after.id > before.id and after.status == "done"
    # the phases keep the method of the analysis before (thresholds in the seeded workspace)
    assert after.params["particles"] == "model" and after.params["method"] == before.params["method"]
    assert not after.provenance["presegmented"] and after.provenance["particles_from"] == "model"
    assert int(_metric(at, "particles")) == after.n_particles


def test_particle_details_print_numbers_without_binary_rounding_artefacts():
    import numpy as np
    import pandas as pd

    from ui.tables import detail_values

    row = pd.Series({"label": np.int64(7), "volume_um3": 354.6880000000001, "touches_edge": np.bool_(True),
                     "crack_fraction": np.nan, "detachment": 0.1 + 0.2, "area_um2": 175.7058353,
                     "surface_um2": 123456.78}, dtype=object)
    shown = detail_values(row)["value"]
    assert shown.to_dict() == {"label": "7", "volume_um3": "354.7", "touches_edge": "True",
                               "crack_fraction": "–", "detachment": "0.3", "area_um2": "175.7",
                               "surface_um2": "123,457"}


def test_every_table_shows_a_missing_value_as_a_dash_not_none(seeded_ws):
    """A NaN cell (the depth of a slice with no depth, the crack share where none was measured) showed "None",
    read as a word of the data; every table of the dashboard shows "–" (``tables.MISSING``)."""
    import re
    from pathlib import Path

    from ui.tables import MISSING

    s, at = _open(seeded_ws)
    no_exception(at)
    frames = list(at.dataframe)
    assert frames and all(f.proto.placeholder == MISSING for f in frames)
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("ui/*.py"), *root.glob("pages/*.py")]:
        text = path.read_text()
        for m in re.finditer(r"st\.dataframe\(", text):  # each call's arguments, to its closing parenthesis
            depth, i = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            assert "placeholder=tables.MISSING" in text[m.end():i], f"{path.name}: {text[m.start():i][:80]}"


def test_the_table_says_what_depth_runs_over(seeded_ws):
    """The demo's stack begins with empty slices above the electrode: the caption names the electrode's slices
    found (those of run.json) in µm; an analysis made with depth over the volume says so."""
    from dataclasses import replace

    from core.runner import run_analysis

    s, at = _open(seeded_ws)
    no_exception(at)
    a = seeded_ws.latest_analysis(s.id)
    first, last = a.provenance["depth_extent"]
    assert 0 < first < last  # the demo's empty top slices are a margin
    [line] = [c.value for c in at.caption if c.value.startswith("depth_frac runs over")]
    assert line.startswith(f"depth_frac runs over the electrode along z: slices {first}–{last} "
                           f"({first * s.spacing[0]:.1f}–{last * s.spacing[0]:.1f} µm)")
    # which end is depth 0 (QA walk 7: "slices 0–79" read as depth 0 at slice 0; the separator was at 79)
    assert line.endswith(f" Depth 0 is the separator side: the start of z (slice {first}), as set on the Samples "
                         "page.")  # the electrode's face, past the margin (QA walk 10: it named the volume's end)
    run_analysis(seeded_ws, s.id, seeded_ws.load_volume(s), replace(a.resolved, depth_from="volume"))
    at.run()
    assert ("depth_frac runs over the imaged volume along z. Depth 0 is the separator side: the start of z (index "
            "0), as set on the Samples page.") in [c.value for c in at.caption]
    s = seeded_ws.update_sample(s.id, separator_side="auto")
    auto = run_analysis(seeded_ws, s.id, seeded_ws.load_volume(s))
    span = auto.provenance["depth_extent"]
    want = (f"the start of z (slice {span[0]})" if auto.resolved.separator_side == "start" else
            f"the end of z (slice {span[1]})")
    at.run()
    assert any(c.value.endswith(f"Depth 0 is the separator side: {want}, detected as the end with less NMC.")
               for c in at.caption)


def test_depth_line_of_a_single_slice_across_the_thickness_axis_says_why_depth_is_empty():
    from core.pipeline import AnalysisParams
    from core.records import Analysis
    from ui.particles_view import depth_line

    p = AnalysisParams(axis=0)
    a = Analysis(id=1, sample_id=1, requested=p, resolved=p, status="done", error=None, created_at=0.0,
                 updated_at=0.0, owner_pid=None, provenance={"input_shape": [1, 500, 572]}, phases_path=None,
                 labels_path=None, table_path=None, n_particles=1)
    assert depth_line(None, a) == (
        "depth_frac is empty: this single slice lies across the thickness axis (z), so it has no depth; for a "
        "cross-section of the electrode, choose its in-plane thickness axis on the Samples page and analyse it again.")


def test_the_minimum_volume_says_what_it_is_on_a_single_slice(seeded_ws):
    """QA: a 2D slice's separation form asked for a volume in µm³ without a word of what that is on a slice."""
    import math

    from ui import state

    s, at = _open(seeded_ws)
    no_exception(at)
    box = at.number_input(key=state.k(state.PART_MIN_VOL, s.id))
    assert box.label == "Minimum particle volume (µm³)"
    assert "On a single slice (a 2D image) a fragment is weighed as the ball of the circle of its area: 1 µm³ is a " \
           f"disc about {(6 / math.pi) ** (1 / 3):.2f} µm across." in box.help


def test_the_minimum_volume_label_names_the_ball_on_a_single_slice(empty_ws):
    """QA walk 15: a slice's form asked for "Minimum particle volume (µm³)" beside areas; the label now says what the
    volume of a particle on a slice is (only the help said it)."""
    import numpy as np

    from core.runner import run_analysis

    from ui import state

    phases = np.ones((1, 24, 24), np.uint8)
    phases[0, 6:18, 6:18] = 2
    path = empty_ws.root / "slice.npy"
    np.save(path, phases)
    s = empty_ws.add_sample("slice", str(path), spacing=0.4, shape=(1, 24, 24),
                            source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    run_analysis(empty_ws, s.id, empty_ws.load_volume(s), presegmented=True)
    box = _page_of(s).number_input(key=state.k(state.PART_MIN_VOL, s.id))
    assert box.label == "Minimum particle volume (µm³; on this slice, of the ball of a particle's circle)"


def test_the_settings_shown_follow_a_newer_analysis_of_the_sample(seeded_ws):
    """QA walk 16: after a thresholds analysis ran behind a U-Net one, the Particles page showed the new particles
    under "Particles by: 3D U-Net" (a rerun would have used it): the method, the seeds and the separation form are
    read again from the latest analysis whenever it changes (choices made since the latest one are kept)."""
    from dataclasses import replace

    from core.runner import run_analysis

    s, at = _open(seeded_ws)
    method, h = state.k(state.PART_METHOD, s.id), state.k(state.PART_H, s.id)
    assert at.radio(key=method).value == "watershed"
    before = at.slider(key=h).value
    at.radio(key=method).set_value("model")  # chosen, not run
    at.run()
    assert at.radio(key=method).value == "model"  # kept while the latest analysis is the same
    latest = seeded_ws.latest_analysis(s.id)
    newer = replace(latest.resolved, separation=replace(latest.resolved.separation, h_um=before + 0.25))
    run_analysis(seeded_ws, s.id, seeded_ws.load_volume(s), newer)
    at.run()
    no_exception(at)
    assert at.radio(key=method).value == "watershed"
    assert at.slider(key=h).value == pytest.approx(before + 0.25)


def test_a_voxel_size_changed_since_the_analysis_is_said_on_the_particles_page(seeded_ws):
    """QA: after the sample's voxel size was edited, the Particles page showed the analysis's µm values unsaid (the
    Samples page warned), and a separation run there measured with the new size on the old phases."""
    from ui import state

    s, _ = _open(seeded_ws)
    a = seeded_ws.latest_analysis(s.id)
    old = "×".join(f"{v:g}" for v in s.spacing)
    seeded_ws.update_sample(s.id, spacing=(0.5, s.spacing[1], s.spacing[2]))
    said = (f"Analysis #{a.id} used the voxel size {old} µm; the sample now says 0.5×{s.spacing[1]:g}×{s.spacing[2]:g} "
            "µm. Rerun the analysis (Segment page) to update the measurements. A particle separation run from its "
            "phases measures with the voxel size the sample says now.")
    for name in ("3_particles.py", "1_samples.py"):
        at = AppTest.from_file(page(name), default_timeout=TIMEOUT)
        at.session_state[state.SAMPLE_ID] = s.id
        at.run()
        no_exception(at)
        assert said in [w.value for w in at.warning], name


def test_no_download_reruns_the_page():
    """QA: the Particles page's CSV button reran the page, which replaced the deferred HTML report, so the report
    button clicked next did nothing (MediaFileStorageError in the log): every download button of the dashboard is
    ``on_click="ignore"``.  None is given a callable to make its file on click: Streamlit deletes such a file at the
    second clean-up after it is made, often before the browser asks for it (``ui.exports``' docstring)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = 0
    for path in [*root.glob("ui/*.py"), *root.glob("pages/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "download_button":
                found += 1
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("on_click"), ast.Constant) and kw["on_click"].value == "ignore", \
                    f"{path.name}:{node.lineno}"
                data = kw.get("data", node.args[1] if len(node.args) > 1 else None)
                assert not isinstance(data, ast.Lambda), f"{path.name}:{node.lineno}: a file made on click"
    assert found >= 4


def test_an_ambiguous_separator_side_is_said_where_the_depth_is_shown(seeded_ws):
    """The analysis's warning that the auto-detected separator side is a guess (its job's warnings are not shown
    otherwise) is on the Particles page and on Compare; a side set by hand (the demos) is not said.  An analysis
    run before runs recorded it has it read from its stored phases (QA walk 8: old analyses said nothing)."""
    import json
    import sqlite3

    from apphelpers import specks_sample
    from ui import cache
    from ui.compare_view import guessed_side_note

    s, a = specks_sample(seeded_ws)  # the same CBD at both ends of z
    said = a.provenance["separator_side_warning"]
    assert s.separator_side == "auto" and "ambiguous" in said
    at = _page_of(s)
    [w] = [w.value for w in at.warning if "separator side along axis z is ambiguous" in w.value]
    assert w.endswith("It is set on the Samples page (Separator side); analyse again after setting it.")
    demo, at = _open(seeded_ws)
    assert not [w for w in at.warning if "separator side" in w.value]
    refs = {"seg": cache.ResultRef.of(seeded_ws, a),
            "cycled-5C": cache.ResultRef.of(seeded_ws, seeded_ws.latest_analysis(demo.id))}
    note = guessed_side_note(refs)
    assert note.startswith("The separator side of seg was auto-detected") and "cycled-5C" not in note
    assert guessed_side_note({"cycled-5C": refs["cycled-5C"]}) == ""
    # an analysis recorded before the sentence was: read from its phases, the same sentence
    old = {k: v for k, v in a.provenance.items() if k != "separator_side_warning"}
    with sqlite3.connect(seeded_ws.db_path) as con:
        con.execute("UPDATE analyses SET provenance = ? WHERE id = ?", (json.dumps(old), a.id))
    cache.side_said.clear()
    assert "separator_side_warning" not in seeded_ws.get_analysis(a.id).provenance
    assert cache.side_said(refs["seg"]) == said


def test_a_separator_side_set_after_the_analysis_is_said_instead_of_the_guess(seeded_ws):
    """QA walk 7: after the side was set on the Samples page, the analysis was not called out of date and the
    warning still asked to set it.  The side the analysis detected, set by hand, changes nothing; the other end is
    an analysis to rerun; back to "auto" is too where the analysis was given a side."""
    from apphelpers import specks_sample
    from ui import tables

    s, a = specks_sample(seeded_ws)
    detected = a.resolved.separator_side
    other = "end" if detected == "start" else "start"

    def warnings_now():
        return [w.value for w in _page_of(s).warning if "separator" in w.value]

    assert len(warnings_now()) == 1  # the guess
    s = seeded_ws.update_sample(s.id, separator_side=detected)
    assert warnings_now() == [] and tables.changed_since(s, a) == []
    s = seeded_ws.update_sample(s.id, separator_side=other)
    assert tables.changed_since(s, a) == ["separator side"]
    assert warnings_now() == [f"Analysis #{a.id} measured depth along the thickness axis z, the separator at the "
                              f"{detected} (detected); the sample now says z, the separator at the {other}. Rerun "
                              "the analysis (Segment page) to update the measurements."]
    hand = run_analysis_with_side(seeded_ws, s)
    s = seeded_ws.update_sample(s.id, separator_side="auto")
    assert tables.changed_since(s, hand) == ["separator side"] and tables.changed_since(s, a) == []
    s = seeded_ws.update_sample(s.id, axis=1)
    assert tables.changed_since(s, a) == ["thickness axis"]


def run_analysis_with_side(ws, sample):
    from core.runner import run_analysis

    return run_analysis(ws, sample.id, ws.load_volume(sample), presegmented=True)


def test_a_cropped_analysis_says_where_its_positions_count_from():
    """QA walk 7: the centroids of a crop from z 20 ran from 0 µm, and nothing said they count from the crop."""
    from core.pipeline import AnalysisParams
    from core.records import Analysis
    from ui.particles_view import origin_line

    p = AnalysisParams()

    def analysis(prov):
        return Analysis(id=1, sample_id=1, requested=p, resolved=p, status="done", error=None, created_at=0.0,
                        updated_at=0.0, owner_pid=None, provenance=prov, phases_path=None, labels_path=None,
                        table_path=None, n_particles=1)

    crop = {"input": {"source_options": {"read": {"crop": [[20, 220], [0, 200], [5, 205]]}}}}
    assert origin_line(analysis(crop)) == (
        "Positions (centroid_z_um, centroid_y_um, centroid_x_um) and slice indices count from the region of "
        "interest's first voxel: voxel (z 20, y 0, x 5) of the file.")
    assert origin_line(analysis({"input": {"source_options": {}}})) is None and origin_line(analysis({})) is None
