"""Tests for core.report: a self-contained HTML report (tables, parameters, versions, checksums, charts)."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from core.pipeline import AnalysisParams
from core.report import PNG_SIGNATURE, ReportElectrode, build_report

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


def test_report_without_optional_parts():
    e = ReportElectrode("only", _table(3, 2))
    html = build_report([e], max_rows=None, embed_csv=False)
    assert "No parameters recorded." in html and "download=" not in html and "<img" not in html
    assert "particles shown" not in html  # all rows shown
    assert "<h2>Recipe</h2>" not in html and "<h2>Summary</h2>" not in html


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(electrodes="x"), TypeError, r"electrodes must be a list of ReportElectrode"),
    (dict(electrodes=[1]), TypeError, r"ReportElectrode records, got int"),
    (dict(electrodes=[ReportElectrode("a", [1, 2])]), TypeError, r"table of electrode 'a' must be a DataFrame"),
    (dict(electrodes=[ReportElectrode("a", pd.DataFrame())] * 2), ValueError, r"names must be unique"),
    (dict(summary={"a": 1}), TypeError, r"summary must be a DataFrame"),
    (dict(charts={"c": "<div>no chart</div>"}), ValueError, r"chart 'c' is neither SVG text"),
    (dict(max_rows=-1), ValueError, r"max_rows must be an integer >= 0"),
])
def test_report_argument_errors(kwargs, exc, pattern):
    kwargs = {"electrodes": [ReportElectrode("e", _table(3, 0))], **kwargs}
    electrodes = kwargs.pop("electrodes")
    with pytest.raises(exc, match=pattern):
        build_report(electrodes, **kwargs)
