"""Tests for core.report: a self-contained HTML report (tables, parameters, versions, checksums, charts)."""

from __future__ import annotations

import base64
import html as html_lib
import io
import re
import struct
import zlib
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from core.pipeline import AnalysisParams
from core.report import PNG_SIGNATURE, ReportElectrode, ReportSection, build_report

SVG = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>'
PNG = PNG_SIGNATURE + b"\0\0\0\rIHDR" + b"\0" * 17  # only the signature matters to the report


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    det = rng.uniform(0, 1, n)
    det[0] = np.nan
    return pd.DataFrame({"label": np.arange(1, n + 1), "detachment": det,
                         "equiv_diameter_um": rng.uniform(2, 9, n), "touches_edge": rng.uniform(0, 1, n) < 0.3})


def _electrodes():
    p = AnalysisParams().to_dict()
    p["segment"]["low"], p["segment"]["high"] = 1234.5, 6789.25
    return [
        ReportElectrode("pristine", _table(12, 0), params=p, source="/data/pristine.tif", spacing_um=(0.4, 0.4, 0.5),
                        input_checksum="ab" * 16, versions={"core": "0.1.0", "numpy": "2.4.6"}, group="fresh"),
        ReportElectrode("cycled <5C>", _table(30, 1), params=AnalysisParams().to_dict(), source="demo:cycled-5C",
                        spacing_um=(0.4, 0.4, 0.4), input_checksum="cd" * 16, versions={"core": "0.1.0"}),
    ]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> _Collect:
    c = _Collect()
    c.feed(html)
    return c


@pytest.fixture(scope="module")
def html():
    summary = pd.DataFrame({"electrode": ["pristine", "cycled <5C>"], "median detachment": [0.123456, 0.654321]})
    return build_report(
        _electrodes(), title="My comparison", summary=summary, charts={"histogram": SVG, "scatter": PNG},
        versions={"core": "0.1.0", "vl-convert-python": "1.9.0"},
        recipe={"recipe_version": 1, "analyses": [{"name": "pristine"}]}, notes=["A note."], max_rows=10,
    )


def test_report_holds_tables_parameters_versions_and_checksums(html):
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<title>My comparison</title>" in html and "A note." in html
    for needle in ("0.1235", "0.6543",                  # the summary, 4 significant digits
                   "segment.low", "1234.5", "6789.25",   # flattened, resolved parameters
                   "separation.h_um", "vl-convert-python", "2.4.6",
                   "ab" * 16, "cd" * 16, "/data/pristine.tif", "0.4, 0.4, 0.5"):
        assert needle in html, needle
    # every electrode's per-particle table, first rows shown
    t = _electrodes()[1].table
    assert f"{t['equiv_diameter_um'].iloc[3]:.4g}" in html
    assert "10 of 30 particles shown." in html and "10 of 12 particles shown." in html
    # names are escaped, never markup
    assert "cycled &lt;5C&gt;" in html and "<5C>" not in html


def test_report_embeds_whole_tables_recipe_and_charts(html):
    tags = _parse(html).tags
    links = {a["download"]: a["href"] for t, a in tags if t == "a" and "download" in a}
    assert set(links) == {"pristine-particles.csv", "cycled_5C-particles.csv", "recipe.json"}
    csv = base64.b64decode(links["cycled_5C-particles.csv"].split(",", 1)[1]).decode()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv)), _electrodes()[1].table)  # all 30 rows
    assert b'"recipe_version": 1' in base64.b64decode(links["recipe.json"].split(",", 1)[1])
    imgs = [a["src"] for t, a in tags if t == "img"]
    assert len(imgs) == 2
    assert imgs[0].startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(imgs[0].split(",", 1)[1]).startswith(b"<svg")  # XML prologue dropped
    assert imgs[1].startswith("data:image/png;base64,")
    assert base64.b64decode(imgs[1].split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_report_opens_offline(html):
    """No script at all, and no src/href/url()/@import that leaves the file."""
    tags = _parse(html).tags
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    for t, attrs in tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (t, attrs[name][:60])
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, re.I) and "@import" not in html


def test_a_whole_particle_table_shows_its_key_columns_and_the_csv_holds_the_rest():
    """All 26 columns made the report's table wider than the page (read by scrolling sideways)."""
    from core.metrics import COLUMNS
    from core.report import REPORT_COLUMNS

    rng = np.random.default_rng(0)
    t = pd.DataFrame({c: rng.uniform(0, 1, 5) for c in COLUMNS})
    html = build_report([ReportElectrode("e", t)], max_rows=None)
    table = html.split("<h2>Per-particle tables</h2>", 1)[1]
    assert "<th>equiv_<wbr>diameter_<wbr>um</th>" in table  # a long name may break after its underscores
    heads = re.findall(r"<th>(.*?)</th>", table.replace("<wbr>", ""))
    assert heads == list(REPORT_COLUMNS) and len(COLUMNS) == 26
    rest = [c for c in COLUMNS if c not in REPORT_COLUMNS]
    assert f"12 of 26 columns shown; the CSV holds every one ({', '.join(rest)})." in table
    links = {a["download"]: a["href"] for tag, a in _parse(html).tags if tag == "a" and "download" in a}
    csv = base64.b64decode(links["e-particles.csv"].split(",", 1)[1]).decode()
    assert list(pd.read_csv(io.StringIO(csv)).columns) == list(COLUMNS)
    # without the CSV in the report, nothing is left out of the table
    bare = build_report([ReportElectrode("e", t)], max_rows=None, embed_csv=False)
    assert re.findall(r"<th>(.*?)</th>", bare.split("<h2>Per-particle tables</h2>", 1)[1].replace("<wbr>", "")) \
        == list(COLUMNS)
    assert "columns shown" not in bare


def test_report_without_optional_parts():
    e = ReportElectrode("only", _table(3, 2))
    html = build_report([e], max_rows=None, embed_csv=False)
    assert "No parameters recorded." in html and "download=" not in html and "<img" not in html
    assert "particles shown" not in html  # all rows shown
    assert "<h2>Recipe</h2>" not in html and "<h2>Summary</h2>" not in html
    assert "Made " not in html and '<th class="k">analysis</th>' not in html  # said only where given
    assert build_report([e], max_rows=None, embed_csv=False) == html  # the same bytes, built again


def test_a_report_says_what_each_column_of_its_tables_holds():
    """QA walk 17: only the detachment was defined; volume_um3 against n_voxels, surface_area_um2 against the area
    columns, depth_frac over the electrode were left to be guessed."""
    from core.metrics import COLUMN_MEANINGS, COLUMNS

    assert tuple(COLUMN_MEANINGS) == COLUMNS and all(v and v == v.strip() for v in COLUMN_MEANINGS.values())
    table = _table(3, 2)
    html = build_report([ReportElectrode("only", table)])
    section = html.split("<h3>Columns</h3>", 1)[1].split("</table>", 1)[0]
    for c in table.columns:
        if c in COLUMN_MEANINGS:
            assert f'<td class="k">{c}</td><td class="k">{html_lib.escape(COLUMN_MEANINGS[c])}</td>' in section, c


def test_a_report_says_when_it_was_made_and_which_analysis_each_electrode_is():
    """QA walk 17: no date or analysis number anywhere in a report or its recipe."""
    e = ReportElectrode("only", _table(3, 2), analysis="#3, 2026-12-07 23:34 UTC")
    html = build_report([e], made="2026-12-07 23:40 UTC")
    assert '<p class="note">Made 2026-12-07 23:40 UTC.</p>' in html
    assert '<th class="k">analysis</th>' in html and '<td class="k">#3, 2026-12-07 23:34 UTC</td>' in html
    with pytest.raises(TypeError, match="made must be a time worded as text"):
        build_report([e], made=1.0)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(electrodes="x"), TypeError, r"electrodes must be a list of ReportElectrode"),
    (dict(electrodes=[1]), TypeError, r"ReportElectrode records, got int"),
    (dict(electrodes=[ReportElectrode("a", [1, 2])]), TypeError, r"table of electrode 'a' must be a DataFrame"),
    (dict(electrodes=[ReportElectrode("a", pd.DataFrame())] * 2), ValueError, r"names must be unique"),
    (dict(summary={"a": 1}), TypeError, r"summary must be a DataFrame"),
    (dict(charts={"c": "<div>no chart</div>"}), ValueError, r"chart 'c' is neither SVG text"),
    (dict(max_rows=-1), ValueError, r"max_rows must be an integer >= 0"),
    (dict(caveats="one sentence"), TypeError, r"caveats must be a list of sentences"),
    (dict(sections=["text"]), TypeError, r"sections must be ReportSection records, got str"),
    (dict(sections=[ReportSection("s", table=[1])]), TypeError, r"table of section 's' must be a DataFrame"),
])
def test_report_argument_errors(kwargs, exc, pattern):
    kwargs = {"electrodes": [ReportElectrode("e", _table(3, 0))], **kwargs}
    electrodes = kwargs.pop("electrodes")
    with pytest.raises(exc, match=pattern):
        build_report(electrodes, **kwargs)


def test_summary_has_a_column_per_electrode_so_that_it_fits_the_page():
    """A row per electrode ran past the page's right edge with a dozen statistics: one row per statistic."""
    stats = ["n_particles", "n_used", "median", "median_ci_lo", "median_ci_hi", "q1", "q3", "iqr", "share_above",
             "share_ci_lo", "share_ci_hi", "median_equiv_diameter_um"]
    summary = pd.DataFrame({"electrode": ["calendered-real", "b <2>"], "group": ["", "g"],
                            **{c: [0.123456 + i, np.nan] for i, c in enumerate(stats)}})
    summary["n_particles"] = [1455, 12]
    page = build_report([ReportElectrode("calendered-real", _table(3, 0))], summary=summary, embed_csv=False)
    part = page.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", part)
    assert len(rows) == 1 + len(summary.columns) - 1  # a header, then a row per statistic
    head = re.findall(r"<th[^>]*>(.*?)</th>", rows[0])
    assert head == ["statistic", "calendered-real", "b &lt;2&gt;"]
    cells = {re.findall(r"<td[^>]*>(.*?)</td>", r)[0]: re.findall(r"<td[^>]*>(.*?)</td>", r)[1:] for r in rows[1:]}
    assert cells["n_particles"] == ["1455", "12"] and cells["median"] == ["2.123", "–"]
    assert cells["group"] == ["", "g"] and len(cells) == len(stats) + 1
    # a table that names no electrodes is shown as it comes
    plain = build_report([ReportElectrode("x", _table(3, 0))], summary=pd.DataFrame({"a": [1.5]}), embed_csv=False)
    assert "<th>a</th>" in plain


def test_caveats_and_caller_sections_are_shown_escaped():
    tests = pd.DataFrame({"A": ["pristine"], "B": ["cycled <5C>"], "Mann–Whitney p (Holm)": [2.6e-117],
                          "Kolmogorov–Smirnov p (Holm)": [7.4e-120], "Cliff's δ": [-0.77]})
    sec = ReportSection("Differences between electrodes: detachment index (0–1)",
                        items=["pristine vs cycled <5C>: lower."], table=tests, note="p-values Holm-corrected.")
    page = build_report(_electrodes(), caveats=["The compared analyses used different parameters: b used h = 1.",
                                                "FIB is a single slice <2D>."], sections=[sec], embed_csv=False,
                        summary=pd.DataFrame({"electrode": ["pristine"], "median": [0.5]}))
    assert page.count('<p class="caveat">') == 2
    assert "The compared analyses used different parameters: b used h = 1." in page
    assert "FIB is a single slice &lt;2D&gt;." in page and "<2D>" not in page
    # the section after the summary: heading, the readings as a list, the table, the note
    assert page.index("<h2>Summary</h2>") < page.index("<h2>Differences between electrodes: detachment index "
                                                       "(0–1)</h2>") < page.index("<h2>Parameters</h2>")
    assert "<li>pristine vs cycled &lt;5C&gt;: lower.</li>" in page
    for needle in ("Mann–Whitney p (Holm)", "Kolmogorov–Smirnov p (Holm)", "Cliff's δ", "2.6e-117",
                   "-0.77", "p-values Holm-corrected."):
        assert needle in page, needle
    assert "caveat" not in build_report(_electrodes(), embed_csv=False).split("</style>", 1)[1]


def _png(width: int, ppi: float | None) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, 4, 8, 6, 0, 0, 0))
    phys = chunk(b"pHYs", struct.pack(">IIB", round(ppi / 0.0254), round(ppi / 0.0254), 1)) if ppi else b""
    return PNG_SIGNATURE + ihdr + phys + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_a_dense_png_is_drawn_at_its_css_size():
    """vl-convert's 2x render states 144 ppi: drawn 640 px wide, not 1280 (a 72 ppi or unstated PNG as it is)."""
    page = build_report([ReportElectrode("e", _table(3, 0))], embed_csv=False,
                        charts={"2x": _png(1280, 144), "1x": _png(700, 72), "bare": _png(500, None), "stub": PNG})
    imgs = [a for t, a in _parse(page).tags if t == "img"]
    assert [a.get("width") for a in imgs] == ["640", None, None, None]


def test_the_axis_tables_have_a_column_per_electrode_and_per_measure():
    from core import compare

    rng = np.random.default_rng(0)
    tables = {f"e{i}": pd.DataFrame({"detachment": rng.normal(0.1 * i, 0.1, 60), "touches_edge": False})
              for i in range(3)}
    res = compare.electrode_trend(tables, {f"e{i}": float(i) for i in range(3)}, attribute="C-rate", unit="C",
                                  rng=0, n_boot=100)
    page = build_report([ReportElectrode(n, t) for n, t in tables.items()], axis_trend=res, embed_csv=False)
    part = page.split("<h2>Electrodes on an axis", 1)[1].split("<h2>", 1)[0]
    heads = [re.findall(r"<th[^>]*>(.*?)</th>", t) for t in re.findall(r"<tr>(<th.*?)</tr>", part)]
    assert heads == [["statistic", "e0", "e1", "e2"], ["statistic", "median", "share_above"]]
    assert "<td class=\"k\">C-rate (C)</td>" in part and "<td class=\"k\">slope</td>" in part
    # its CSV is the page's file (QA walk 17: two files named trend-C-rate.csv, of 14 and 21 columns)
    [href] = re.findall(r'download="trend-C-rate.csv" href="data:text/csv;base64,([^"]+)"', part)
    assert base64.b64decode(href) == compare.trend_file_table(res).to_csv(index=False).encode("utf-8")
    assert list(compare.trend_file_table(res).columns[:8]) == [
        "electrode", "metric", "attribute", "unit", "x_scale", "edge_policy", "cut", "confidence"]


def test_the_summary_s_note_is_under_its_table_escaped():
    """How the summary was made (its intervals, which particles it counts) is said under its table."""
    summary = pd.DataFrame({"electrode": ["pristine"], "share > 0.5": [0.25]})
    note = "Median CI: percentile bootstrap (2000 resamples, seed 0); share CI: Wilson score interval <95 %>."
    page = build_report(_electrodes(), summary=summary, summary_note=note, embed_csv=False)
    part = page.split("<h2>Summary</h2>", 1)[1].split("<h2>", 1)[0]
    assert part.index("share &gt; 0.5") < part.index(f'<p class="note">{html_lib.escape(note)}</p>')
    assert "Wilson score interval" not in build_report(_electrodes(), summary_note=note, embed_csv=False)  # no table
    with pytest.raises(TypeError, match="summary_note must be a sentence"):
        build_report(_electrodes(), summary=summary, summary_note=["a"])
