"""Exports: chart images, table bytes, and the download sections of the Compare and Particles pages."""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.recipe import loads
from core.report import PNG_SIGNATURE
from core import compare
from ui import charts, exports, state

from apphelpers import TIMEOUT, chart_specs, classifier_sample, no_exception, page


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.fixture(scope="module")
def combined():
    rng = np.random.default_rng(0)
    parts = []
    for name, shift in (("A", 0.0), ("B", 0.3)):
        n = 40
        parts.append(pd.DataFrame({
            "label": np.arange(1, n + 1), "detachment": np.clip(rng.normal(0.2 + shift, 0.1, n), 0, 1),
            "equiv_diameter_um": rng.uniform(2, 9, n), "depth_frac": rng.uniform(0, 1, n),
        }).assign(electrode=name))
    return pd.concat(parts, ignore_index=True)


def _tables(combined):
    return {n: g.drop(columns="electrode").reset_index(drop=True) for n, g in combined.groupby("electrode")}


def test_chart_png_and_svg_are_valid_images(combined):
    chart = charts.trend(compare.trend(_tables(combined), "equiv_diameter_um", edge_policy="include", rng=0))
    svg = exports.chart_svg(chart)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "equivalent diameter (µm)" in svg  # the axis title with its unit
    png = exports.chart_png(chart, scale=2)
    w, h = _png_size(png)
    w1, _ = _png_size(exports.chart_png(chart, scale=1))
    assert w1 > exports.EXPORT_WIDTH // 2 and w == pytest.approx(2 * w1, abs=2)
    # the same chart gives the same picture
    assert exports.chart_svg(chart) == svg


def test_container_width_and_large_data_are_exportable(combined):
    bar = charts.colour_bar()  # sized "container" in the app
    assert exports._spec(bar)["width"] == exports.EXPORT_WIDTH
    assert exports.chart_svg(bar).startswith("<svg")
    big = pd.concat([combined] * 80, ignore_index=True)  # 6,400 rows: more than Altair's default limit
    dist = compare.distributions(_tables(big), "detachment", edge_policy="include")
    assert exports.chart_png(charts.distribution(dist, "ecdf"))[:8] == PNG_SIGNATURE
    with pytest.raises(TypeError, match="Altair chart or a Vega-Lite dict"):
        exports.chart_svg("not a chart")
    with pytest.raises(ValueError, match="scale must be > 0"):
        exports.chart_png(bar, scale=0)


def test_table_bytes_round_trip_and_are_deterministic(combined):
    pq = exports.table_parquet(combined)
    assert pq[:4] == b"PAR1" and pq == exports.table_parquet(combined.copy())
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(pq)), combined)
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(exports.table_csv(combined))), combined)


@pytest.fixture
def captured(monkeypatch):
    """Every download's data by file name: the makers of the files made on request (:func:`ui.exports.offer`, called
    by :func:`_data` as a click calls them; one test clicks for real), and the bytes given with the page."""
    files: dict[str, object] = {}
    add, offer = MediaFileManager.add, exports.offer

    def on_request(c, label, build, *, file_name, **kw):
        files[file_name] = build
        return offer(c, label, build, file_name=file_name, **kw)

    def eager(self, path_or_data, mimetype, coordinates, file_name=None, **kw):
        files[file_name] = path_or_data
        return add(self, path_or_data, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add", eager)
    monkeypatch.setattr(exports, "offer", on_request)
    return files


def _offered(at) -> list[str]:
    """The labels of the export section's buttons that make a file on request, in page order."""
    return [b.label for b in at.button if b.key and b.key.startswith("w_exp_")]


def _data(files, name):
    v = files[name]
    return v() if callable(v) else v


def test_compare_page_downloads(seeded_ws, captured):
    samples = seeded_ws.list_samples()[:2]
    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    captured.clear()  # the first run's files: three electrodes, whose C-rates draw the electrode axis' charts too
    at.multiselect(key=state.CMP_SAMPLES).set_value([s.id for s in samples]).run()
    no_exception(at)
    labels = _offered(at)
    assert labels[:3] == ["Particle table (CSV)", "Particle table (Parquet)", "HTML report"]
    assert [b.label for b in at.get("download_button")] == ["Recipe (JSON)"]  # made with the page: no button to make it
    n_charts = len(chart_specs(at))  # every chart the page shows is offered
    assert n_charts >= 8 and labels[3:] == ["PNG", "SVG"] * n_charts
    assert not any(b.proto.disabled for b in at.get("download_button"))
    names = [f"{s.name} (SYNTHETIC)" for s in samples]
    tables = {n: seeded_ws.load_table(seeded_ws.latest_analysis(s.id)) for n, s in zip(names, samples)}

    csv = pd.read_csv(io.BytesIO(_data(captured, "comparison-particles.csv")))
    assert list(csv["electrode"].unique()) == names and len(csv) == sum(len(t) for t in tables.values())
    pq = pd.read_parquet(io.BytesIO(_data(captured, "comparison-particles.parquet")))
    pd.testing.assert_frame_equal(pq, compare.combine(tables, {n: "SYNTHETIC demo" for n in names}))

    pngs = [n for n in captured if n and n.startswith("comparison-") and n.endswith(".png")]
    svgs = [n for n in captured if n and n.startswith("comparison-") and n.endswith(".svg")]
    assert len(pngs) == len(svgs) == n_charts
    assert "comparison-detachment_vs_equivalent_diameter.png" in pngs and "comparison-detachment_vs_depth.svg" in svgs
    for name in pngs[:3]:
        assert _data(captured, name)[:8] == PNG_SIGNATURE
    for name in svgs[:3]:
        assert _data(captured, name).lstrip().startswith(b"<svg")

    html = _data(captured, "comparison-report.html").decode()
    for n, t in tables.items():
        assert n in html
        assert seeded_ws.latest_analysis(samples[list(tables).index(n)].id).provenance["input_checksum"] in html
    # the charts as PNG, drawn at their CSS size: the text of an SVG would be drawn in the reader's fonts
    imgs = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([^"]+)" width="(\d+)">', html)
    assert len(imgs) == n_charts and "data:image/svg+xml" not in html
    for data, width in imgs[:3]:
        png = base64.b64decode(data)
        assert _png_size(png)[0] == pytest.approx(exports.REPORT_SCALE * int(width), abs=1)
        assert exports.EXPORT_WIDTH <= int(width) < 2 * exports.EXPORT_WIDTH  # the chart's CSS size
    assert "segment.low" in html and "vl-convert-python" in html and "<script" not in html

    recipe = loads(_data(captured, "comparison-recipe.json").decode())
    assert [e.name for e in recipe.analyses] == names
    assert [e.input.name for e in recipe.analyses] == [s.name for s in samples]  # demo inputs
    # the ECDF choice on the page reaches the exported distribution
    at.radio(key=state.CMP_KIND).set_value("ecdf").run()
    no_exception(at)
    spec_svg = _data(captured, "comparison-distribution_of_detachment_index_0_1.svg").decode()
    assert "ECDF" in spec_svg


def test_compare_recipe_records_the_pages_choices_and_replays_its_numbers(seeded_ws, captured):
    """The Compare page's recipe carries its edge choice, cut, smallest diameter, tested measure and axis with its
    scale, and the headless comparison of the same tables with those settings gives the page's summary and trend
    (``python -m core run`` writes it; QA walk 17 left: the recipe replayed the analyses, not the statistics)."""
    from core import comparison

    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    at.slider(key=state.CMP_CUT).set_value(0.35).run()
    at.number_input(key=state.CMP_MIN_DIAMETER).set_value(1.5).run()
    at.selectbox(key=state.CMP_METRIC).set_value("sphericity").run()
    no_exception(at)
    recipe = loads(_data(captured, "comparison-recipe.json").decode())
    scale = at.radio(key=state.k(state.CMP_AXIS_SCALE, "C-rate")).value
    assert recipe.compare == comparison.CompareSettings(edge_policy="include", cut=0.35, min_diameter_um=1.5,
                                                        metric="sphericity", axis="C-rate", axis_scale=scale)
    samples = seeded_ws.list_samples()
    names = [e.name for e in recipe.analyses]
    tables = {n: seeded_ws.load_table(seeded_ws.latest_analysis(s.id)) for n, s in zip(names, samples)}

    def headless():
        return comparison.compare_electrodes(tables, recipe.compare, groups={e.name: e.group for e in recipe.analyses},
                                             attributes={e.name: e.attributes for e in recipe.analyses})

    res = headless()
    [shown] = [d.value for d in at.dataframe if "n_used" in d.value.columns and "median_ci_lo" in d.value.columns]
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), res.summary.table, check_dtype=False)
    [axis] = [d.value for d in at.dataframe if "median_fit" in d.value.columns]
    pd.testing.assert_frame_equal(axis.reset_index(drop=True), res.axis_trend.table, check_dtype=False)
    assert res.tests.metric == "sphericity" and len(res.tests.table) == 3
    # the edge particles left out: the smallest demo keeps none; the page says so, the recipe still records the
    # axis chosen, and the headless comparison says the same
    at.radio(key=state.CMP_EDGE).set_value("exclude").run()
    no_exception(at)
    recipe = loads(_data(captured, "comparison-recipe.json").decode())
    assert recipe.compare.edge_policy == "exclude" and recipe.compare.axis == "C-rate"
    res = headless()
    assert res.summary is None and res.axis_trend is None
    warned = [w.value for w in at.warning]
    assert res.notes[0] == "No summary: " + warned[0][0].lower() + warned[0][1:]  # (a clause after the colon)


def test_streamlit_deletes_a_file_its_deferred_download_made_at_the_second_clean_up():
    """Why the export section makes its files on request (:func:`ui.exports.offer`) and gives them as bytes: the file
    a ``download_button(data=callable)`` makes is referenced by no session, and the second orphan clean-up after it is
    made deletes it (every script run of every session ends with one), so the browser's request can find it gone.
    A file given as bytes stays while its session references it.  If Streamlit changes this, one click may do again."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    mgr = MediaFileManager(MemoryMediaFileStorage("/media"))
    placeholder = mgr.add_deferred(lambda: b"made on click", "text/plain", "1.(0.1).0", file_name="a.txt")
    url = mgr.execute_deferred(placeholder)
    made = url.rsplit("/", 1)[-1].split(".")[0]
    eager_url = mgr.add(b"given as bytes", "text/plain", "1.(0.2).0", file_name="b.txt",
                        is_for_static_download=True)
    eager = eager_url.rsplit("/", 1)[-1].split(".")[0]
    mgr.remove_orphaned_files()  # another session's run ends
    assert mgr.read_file(made) is not None
    mgr.remove_orphaned_files()  # and another
    assert mgr.read_file(made) is None and mgr.read_file(eager) is not None


def test_a_file_is_made_on_click_and_forgotten_at_the_next_full_run(seeded_ws):
    """The real click path (no `captured`): the button makes the file, a primary Save button with its size and bytes
    takes its place; the page's next full run offers the button again."""
    s = seeded_ws.list_samples()[0]
    a = seeded_ws.latest_analysis(s.id)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    key = state.k(state.EXP_TABLE_PARQUET, "particles")
    at.button(key=key).click().run()
    no_exception(at)
    assert _offered(at) == ["HTML report"]  # the Parquet button gave its place to the Save button
    [save] = [b for b in at.get("download_button") if b.proto.label.startswith("Save Parquet · ")]
    assert save.proto.type == "primary" and save.proto.label.endswith(" kB")
    data = at.session_state[state.EXP_READY][key]
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(data)), seeded_ws.load_table(a))
    assert save.proto.label == f"Save Parquet · {len(data) / 1e3:.0f} kB"
    at.run()  # a full run (a widget changed, a job ended): the file may differ now
    assert _offered(at) == ["Particle table (Parquet)", "HTML report"]
    assert at.session_state[state.EXP_READY] == {}


def test_a_file_that_cannot_be_made_is_said_and_the_page_stays(seeded_ws, monkeypatch):
    s = seeded_ws.list_samples()[0]
    a = seeded_ws.latest_analysis(s.id)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "report_html", broken)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.button(key=state.k(state.EXP_REPORT, "particles")).click().run()
    no_exception(at)
    assert f"{s.name}-analysis{a.id}-report.html could not be made: disk full." in [e.value for e in at.error]
    assert state.k(state.EXP_REPORT, "particles") not in at.session_state[state.EXP_READY]


def test_particles_page_downloads(seeded_ws, captured):
    s = seeded_ws.list_samples()[0]
    a = seeded_ws.latest_analysis(s.id)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    # the page's own CSV button, then the export section (no second CSV)
    assert [b.label for b in at.get("download_button")] == ["Download the table (CSV)", "Recipe (JSON)"]
    assert _offered(at) == ["Particle table (Parquet)", "HTML report"]
    stem = f"{s.name}-analysis{a.id}"
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(_data(captured, f"{stem}-particles.parquet"))),
                                  seeded_ws.load_table(a))
    html = _data(captured, f"{stem}-report.html").decode()
    assert a.provenance["input_checksum"] in html and html.count("<img") == 3
    # when and by which code (QA walk 17: no date, no analysis number, only "core 0.1.0")
    from ui.exports import source_commit, utc_text

    assert re.search(r'<p class="note">Made \d{4}-\d\d-\d\d \d\d:\d\d UTC\.</p>', html)
    assert f'<td class="k">#{a.id}, {utc_text(a.updated_at)}</td>' in html
    assert source_commit() is None or f"<td class=\"k\">core commit</td><td class=\"k\">{source_commit()}" in html
    d = json.loads(_data(captured, f"{stem}-recipe.json"))
    assert [x["name"] for x in d["analyses"]] == [s.name]
    assert d["analyses"][0]["input_checksum"] == a.provenance["input_checksum"]
    # the parameters of the steps that ran: thresholds and seeding, not the network's (it did not run)
    assert "segment.low" in html and "<td class=\"k\">seeding</td>" in html and "model.tile" not in html
    # units beside the parameters whose names carry none (QA walk 17)
    assert '<td class="k">segment.low (grey value of the scan)</td>' in html
    assert '<td class="k">segment.min_island (voxels)</td>' in html and '<td class="k">separation.h_um</td>' in html


def test_report_of_an_already_segmented_sample_names_its_phase_map(empty_ws):
    from core.runner import run_analysis

    phases = np.ones((24, 24, 24), np.uint8)
    z, y, x = np.ogrid[:24, :24, :24]
    phases[(z - 12) ** 2 + (y - 12) ** 2 + (x - 12) ** 2 <= 36] = 2
    phases[:3] = 0
    path = empty_ws.root / "phases.npy"
    np.save(path, phases)
    s = empty_ws.add_sample("seg", str(path), spacing=0.4, source_options={"phase_map": "0=pore,1=cbd,2=nmc"})
    a = run_analysis(empty_ws, s.id, empty_ws.load_volume(s), presegmented=True)
    shown = exports.report_params(s, a)
    assert shown["method"] == "phases read from the file (phase map 0=pore,1=cbd,2=nmc)"
    assert "segment" not in shown and "model" not in shown and shown["seeding"] == "phases"
    html = exports.report_html(empty_ws, [("seg", s, a)], {"seg": empty_ws.load_table(a)}, title="t").decode()
    assert "phases read from the file (phase map 0=pore,1=cbd,2=nmc)" in html
    assert "segment.low" not in html and "threshold" not in html
    # the map mended and a region set since: the report of this analysis keeps the map and region it ran with
    s = empty_ws.update_sample(s.id, source_options={"phase_map": "0=pore,1=nmc,2=cbd",
                                                     "read": {"crop": [[0, 24], [2, 22], [0, 24]]}})
    shown = exports.report_params(s, a)
    assert shown["method"] == "phases read from the file (phase map 0=pore,1=cbd,2=nmc)"
    assert "region of interest" not in shown
    b = run_analysis(empty_ws, s.id, empty_ws.load_volume(s), presegmented=True)
    shown = exports.report_params(s, b)
    assert shown["method"] == "phases read from the file (phase map 0=pore,1=nmc,2=cbd)"
    assert shown["region of interest"] == "z 0:24, y 2:22, x 0:24 (voxels of the file)"
    assert "slices aligned" not in shown
    # the slices aligned since: the report of an analysis that read them so says it (the offsets are in the recipe)
    offsets = [[0, 0]] * 12 + [[1, 0]] * 12
    s = empty_ws.update_sample(s.id, source_options={"phase_map": "0=pore,1=nmc,2=cbd",
                                                     "read": {"crop": [[0, 24], [2, 22], [0, 24]], "align": offsets}})
    c = run_analysis(empty_ws, s.id, empty_ws.load_volume(s), presegmented=True)
    assert "slices aligned" not in exports.report_params(s, b)
    assert exports.report_params(s, c)["slices aligned"].startswith("The 24 slices were aligned: each shifted back")


def test_report_after_a_re_separation_names_the_greyscale_checksum_like_the_recipe(seeded_ws, captured):
    s = seeded_ws.list_samples()[0]
    root = seeded_ws.latest_analysis(s.id)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    at.slider(key=state.k(state.PART_MERGE, s.id)).set_value(0.0)
    next(b for b in at.button if b.proto.label == "Run particle separation").click().run()
    no_exception(at)
    again = seeded_ws.latest_analysis(s.id)
    assert again.id > root.id and again.provenance["phases_from_analysis"] == root.id
    phases_sum = again.provenance["input_checksum"]
    assert phases_sum != root.provenance["input_checksum"]  # the pipeline's own input was the phases
    captured.clear()
    at.run()
    stem = f"{s.name}-analysis{again.id}"
    html = _data(captured, f"{stem}-report.html").decode()
    d = json.loads(_data(captured, f"{stem}-recipe.json"))
    assert d["analyses"][0]["input_checksum"] == root.provenance["input_checksum"]
    assert root.provenance["input_checksum"] in html and phases_sum not in html


def test_a_classifier_analysis_offers_its_recipe_as_a_zip_with_the_training_pairs(seeded_ws, captured):
    import zipfile

    from core.pipeline import AnalysisParams
    from core.recipe import ARCHIVE_RECIPE
    from core.runner import run_analysis
    from core.scribbles import Scribbles

    s = seeded_ws.list_samples()[0]
    vol = seeded_ws.load_volume(s)
    phases = seeded_ws.load_phases(seeded_ws.latest_analysis(s.id))
    z = phases.shape[0] // 2
    lab = np.full(phases.shape[1:], 255, np.uint8)
    lab[::4, ::4] = phases[z, ::4, ::4]
    folder = seeded_ws.save_training(s.id, vol, Scribbles.empty(phases.shape).with_slice(0, z, lab))
    a = run_analysis(seeded_ws, s.id, vol, AnalysisParams(method="classifier", classifier=str(folder)))
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert _offered(at)[-1] == "Recipe (ZIP)"
    # (QA walk 15: the caption said the recipe saves at once; the ZIP is made on a click, as the tables are)
    [said] = [c.value for c in at.caption if "a click makes the file" in c.value]
    # images only where the page offers some (QA walk 17: the Particles page offers none)
    assert said.startswith("Tables, report and recipe: a click makes the file") and "at once" not in said
    with zipfile.ZipFile(io.BytesIO(_data(captured, f"{s.name}-analysis{a.id}-recipe.zip"))) as zf:
        names = zf.namelist()
        d = json.loads(zf.read(ARCHIVE_RECIPE))
    entry = d["analyses"][0]
    assert not Path(entry["params"]["classifier"]).is_absolute()  # not this server's workspace folder
    assert {f"{entry['params']['classifier']}/{n}" for n in ("pairs.npz",)} <= set(names)


def test_compare_report_carries_the_page_caveats_and_tests(seeded_ws, captured):
    """The report says what the page warns of (a single slice compared with volumes, analyses with different
    parameters) and holds its tests between electrodes (Mann–Whitney, Kolmogorov–Smirnov, Cliff's δ, Holm), the
    same numbers and words as the page."""
    from dataclasses import replace

    from core.particles import SeparationParams
    from core.runner import run_analysis
    from ui import compare_view

    first = seeded_ws.list_samples()[0]
    path = seeded_ws.root.parent / "slice.npy"
    np.save(path, np.asarray(seeded_ws.load_volume(first))[24:25])  # one plane of a demo: a 2D image
    flat = seeded_ws.add_sample("FIB slice", str(path), spacing=first.spacing)
    params = replace(seeded_ws.latest_analysis(first.id).requested, separation=SeparationParams(h_um=0.75))
    with pytest.warns(UserWarning, match="single slice"):
        run_analysis(seeded_ws, flat.id, seeded_ws.load_volume(flat), params)
    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    no_exception(at)
    shown = [s.id for s in seeded_ws.list_samples()]
    assert at.multiselect(key=state.CMP_SAMPLES).value == shown

    analyses = {exports.electrode_name(s, [x.name for x in seeded_ws.list_samples()]): seeded_ws.latest_analysis(s.id)
                for s in seeded_ws.list_samples()}
    said = compare_view.caveats(analyses)
    assert len(said) == 2 and said[0].startswith("The compared analyses used different parameters: FIB slice used h")
    assert "FIB slice is a single slice" in said[1] and "compare slices with slices" in said[1]
    warned = [w.value for w in at.warning]
    assert any(w.replace("**", "") == said[0] for w in warned) and said[1] in warned  # the page's own words

    html = _data(captured, "comparison-report.html").decode()
    for sentence in said:
        assert f'<p class="caveat"><strong>Caveat:</strong> {html_lib.escape(sentence)}</p>' in html
    # the page's warnings of bins with few particles (the tiny demos), one caveat each
    few = [w for w in warned if "bins have fewer than" in w]
    assert [w.split(":")[0] for w in few] == ["Detachment against equivalent diameter", "Detachment against depth"]
    # the single slice has no depth: left out of that trend and named, the demos' trend drawn
    assert not any("finite depth_frac" in w for w in warned)
    assert ("Left out of detachment against depth: FIB slice (no depth: a single slice across the thickness axis has "
            "none).") in [c.value for c in at.caption]
    for w in few:
        assert html.count(f'<p class="caveat"><strong>Caveat:</strong> {html_lib.escape(w)}</p>') == 1
    # the tests table as the page shows it: 6 pairs, the same readings and p-values
    [tests] = [d.value for d in at.dataframe if "mwu_p_holm" in d.value.columns]
    assert len(tests) == 6
    section = html.split("<h2>Differences between electrodes: detachment index (0–1)</h2>", 1)[1].split("<h2>", 1)[0]
    for label in ("Mann–Whitney p (Holm)", "Kolmogorov–Smirnov p (Holm)", "Cliff's δ", "effect size"):
        assert f"<th>{label}</th>" in section, label
    for r in tests.itertuples():
        assert html_lib.escape(f"{r.electrode_a} vs {r.electrode_b}: {r.reading}.") in section
        assert f"<td>{r.mwu_p_holm}</td>" in section and f"<td>{r.ks_p_holm}</td>" in section  # as written there
        assert f"<td>{r.cliffs_delta:.4g}</td>" in section
    note = next(c.value for c in at.caption if c.value.startswith("Particles are the observations"))
    assert html_lib.escape(note) in section and "Holm-corrected across the 6 pairs" in note


def test_the_particles_report_carries_the_page_s_specks_warning(empty_ws, captured):
    """The Particles page warned that specks move the median; its report, read without the page, said nothing."""
    from apphelpers import specks_sample

    s, a = specks_sample(empty_ws)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    [w] = [w.value for w in at.warning if "touch no other particle" in w.value]
    html = _data(captured, f"{s.name}-analysis{a.id}-report.html").decode()
    plain = w.replace("*", "")  # the report's caveats are plain text
    assert f'<p class="caveat"><strong>Caveat:</strong> {html_lib.escape(plain)}</p>' in html
    # and the page's other warning: the sample's two ends of z alike, its separator side a guess
    assert html.count('class="caveat"') == 2 and "The separator side along axis z is ambiguous" in html



def _summary_rows(html: str) -> dict[str, list[str]]:
    """The report's Summary: {statistic as written: its cells, one per electrode}."""
    part = html.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", part)[1:]]
    return {r[0]: r[1:] for r in rows}


def test_the_compare_report_and_table_use_the_particles_the_page_summarised(fine_ws, captured):  # noqa: F811 (fixture)
    """QA: with edge particles left out the page summarised the inner particles and the report's Summary every
    particle, without saying so (its tests used the inner ones); the CSV held the edge particles too. The report's
    Summary is the page's (labels with the cut, the page's note on the intervals under it), the report states the edge
    choice, and the table downloads hold the particles the page used."""
    min_d = 3.0
    stored = {s.name: fine_ws.load_table(fine_ws.latest_analysis(s.id)) for s in fine_ws.list_samples()}
    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    at.radio(key=state.CMP_EDGE).set_value("exclude").run()
    at.number_input(key=state.CMP_MIN_DIAMETER).set_value(min_d).run()
    no_exception(at)
    [shown] = [d.value for d in at.dataframe if "share_above" in d.value.columns]
    shown = shown.set_index("electrode")
    used = {n: t[(t["equiv_diameter_um"] >= min_d) & ~t["touches_edge"]] for n, t in stored.items()}
    for n, t in used.items():
        assert shown.loc[n, "n_used"] == len(t) < shown.loc[n, "n_particles"]

    html = _data(captured, "comparison-report.html").decode()
    rows = _summary_rows(html)
    assert rows["particles used"] == [str(len(t)) for t in used.values()]
    assert rows["median detachment"] == [f"{shown.loc[n, 'median']:.4g}" for n in used]
    assert rows["share &gt; 0.5"] == [f"{shown.loc[n, 'share_above']:.4g}" for n in used]
    assert not {"n_used", "share_above", "median_ci_lo", "share_ci_hi"} & set(rows)
    note = next(c.value for c in at.caption if "Median CI: percentile bootstrap" in c.value)
    part = html.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    assert f'<p class="note">{html_lib.escape(note)}</p>' in part  # the page's own words, under the table
    assert "Particles cut by the volume edge: leave out" in note
    # both counts named (QA walk 8: 'particles' fell with the size filter too, and only 'particles used' was said)
    assert "'particles' = the electrode's particles (those at least the smallest diameter counted" in note
    assert html_lib.escape("Particles cut by the volume edge are left out (the page's choice, 'leave out')") in html

    for name in ("comparison-particles.csv", "comparison-particles.parquet"):
        data = io.BytesIO(_data(captured, name))
        table = pd.read_csv(data) if name.endswith(".csv") else pd.read_parquet(data)
        assert not table["touches_edge"].any() and (table["equiv_diameter_um"] >= min_d).all()
        assert {n: int((table["electrode"] == n).sum()) for n in used} == {n: len(t) for n, t in used.items()}


def test_the_particles_report_of_a_classifier_analysis_carries_its_caveat_and_a_readable_summary(empty_ws, captured):
    """QA: the Particles report of a brush-stroke classifier's analysis said nothing of the classifier's low reading
    of detachment on a blurred scan (the Segment page warns of it); its Summary showed raw field names
    ("share_above", no cut) and no word on the intervals or the edge particles."""
    from ui.particles_view import CLASSIFIER_DETACHMENT_NOTE
    from ui.segment_view import CLASSIFIER_EDGE_NOTE

    s, a = classifier_sample(empty_ws)
    at = AppTest.from_file(page("3_particles.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.run()
    no_exception(at)
    assert CLASSIFIER_EDGE_NOTE in CLASSIFIER_DETACHMENT_NOTE  # the Segment page's words
    assert [w.value for w in at.warning if w.value == CLASSIFIER_DETACHMENT_NOTE]
    html = _data(captured, f"{s.name}-analysis{a.id}-report.html").decode()
    assert f'<p class="caveat"><strong>Caveat:</strong> {html_lib.escape(CLASSIFIER_DETACHMENT_NOTE)}</p>' in html
    rows = _summary_rows(html)
    assert {"particles", "particles used", "median detachment", "share &gt; 0.5", "IQR"} <= set(rows)
    assert not {"n_used", "share_above", "median_ci_lo"} & set(rows)
    part = html.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    assert "Median CI: percentile bootstrap (2000 resamples, seed 0)" in part and "Wilson" in part
    assert "Particles cut by the volume edge: include" in part


def test_a_single_electrode_s_report_charts_keep_detachment_on_0_to_1():
    """QA: a report's histogram of detachments all under 0.06 ran its x axis 0–0.058 under the title "(0–1)", the
    last bar cut at the right edge; the size trend's y axis ran 0–0.0013. Detachment axes run 0–1, bins too."""
    rng = np.random.default_rng(3)
    n = 120
    table = pd.DataFrame({"label": np.arange(1, n + 1), "detachment": rng.uniform(0, 0.058, n),
                          "equiv_diameter_um": rng.uniform(3, 10, n), "depth_frac": rng.uniform(0, 1, n),
                          "touches_edge": np.zeros(n, bool)})
    made = {t: exports._spec(c) for t, c in exports.standard_charts({"B": table}).items()}
    hist = made["distribution of detachment index (0–1)"]
    assert hist["encoding"]["x"]["scale"]["domain"] == [0, 1]
    data = pd.DataFrame(next(iter(hist["datasets"].values())))
    assert data["bin_lo"].min() == 0 and data["bin_hi"].max() == 1  # bins over the whole scale
    for title in ("detachment vs equivalent diameter", "detachment vs depth"):
        domains = [layer["encoding"]["y"].get("scale", {}).get("domain") for layer in made[title]["layer"]
                   if "y" in layer.get("encoding", {})]
        assert domains and all(d == [0, 1] for d in domains), (title, domains)


def test_a_report_s_depth_trend_is_binned_as_the_compare_page_bins_it():
    """QA walk 17: the Particles page's report binned depth by equal counts (points at 0.08 / 0.31 / 0.52 / 0.81 /
    0.95), the Compare page by equal widths over 0-1: one electrode, two depth curves in two reports."""
    rng = np.random.default_rng(0)
    n = 200
    table = pd.DataFrame({"detachment": rng.random(n), "equiv_diameter_um": rng.uniform(3, 10, n),
                          "depth_frac": rng.random(n) ** 3, "touches_edge": np.zeros(n, bool)})
    made = exports._spec(exports.standard_charts({"B": table})["detachment vs depth"])
    bins = pd.DataFrame(next(v for v in made["datasets"].values() if v and "x_lo" in v[0]))
    assert sorted(bins["x_lo"].round(6).unique()) == [0.0, 0.2, 0.4, 0.6, 0.8]
    size = exports._spec(exports.standard_charts({"B": table})["detachment vs equivalent diameter"])
    sized = pd.DataFrame(next(v for v in size["datasets"].values() if v and "x_lo" in v[0]))
    assert sized["n"].max() - sized["n"].min() <= 1  # sizes: bins of equal counts, as on the page


def test_under_miles_the_table_downloads_carry_the_weights_the_page_used(fine_ws, captured):  # noqa: F811 (fixture)
    """QA: under Miles–Lantuéjoul the CSV held no weights, so the page's edge-corrected quantiles could not be
    recomputed from it.  Now each row carries ``miles_weight``, and the page's volume-weighted median follows."""
    from core import compare

    at = AppTest.from_file(page("4_compare.py"), default_timeout=TIMEOUT).run()
    at.selectbox(key=state.CMP_METRIC).select("equiv_diameter_um").run()
    at.radio(key=state.CMP_WEIGHTING).set_value("volume").run()
    at.radio(key=state.CMP_EDGE).set_value("miles").run()
    no_exception(at)
    [q] = [d.value for d in at.dataframe if "q95" in d.value.columns]
    q = q.set_index("electrode")
    table = pd.read_csv(io.BytesIO(_data(captured, "comparison-particles.csv")))
    assert not table["touches_edge"].any() and (table["miles_weight"] >= 1).all()
    for name, rows in table.groupby("electrode"):
        w = rows["miles_weight"] * rows["volume_um3"]
        assert q.loc[name, "median"] == pytest.approx(compare.weighted_quantile(rows["equiv_diameter_um"], 0.5, w))
    html = _data(captured, "comparison-report.html").decode()
    assert "column miles_weight (number weighting; times volume_um3 for volume weighting)" in html
