"""Figures quoted in the UI text and the README match the benchmark results they come from.

Each quote is found by its wording in ALL of the UI source (``app.py``, ``ui/**/*.py``, ``pages/*.py``, read
as one text, so the sentence may move between files) or in README.md, and each number in it is compared,
at the precision quoted, with the number parsed from the matching section of ``bench/RESULTS.md``. The test
fails when either side changes alone: a rerun bench that moves a number, or an edited sentence. When a
sentence is reworded on purpose, update its pattern here.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUM = r"(\d+\.\d+)"


def _squash(text: str) -> str:
    """Whitespace collapsed; adjacent Python string literals joined (a sentence split over lines)."""
    text = re.sub(r"\"\s*\n\s*[rf]?\"", "", text)
    return re.sub(r"\s+", " ", text)


def ui_text() -> str:
    files = [ROOT / "app.py", *sorted((ROOT / "ui").rglob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]
    return _squash("\n".join(f.read_text() for f in files if f.exists()))


def readme_text() -> str:
    return _squash((ROOT / "README.md").read_text())


def section(name: str) -> str:
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    m = re.search(rf"<!-- BEGIN {re.escape(name)} -->\n(.*?)<!-- END {re.escape(name)} -->", text, re.S)
    assert m, f"bench/RESULTS.md has no section {name!r}"
    return m.group(1)


def tables(sec: str) -> list[list[dict[str, str]]]:
    """Every markdown table of a section, as lists of {header: cell} rows."""
    out, block = [], []
    for line in sec.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif block:
            head, rows = block[0], block[2:]
            out.append([dict(zip(head, r)) for r in rows])
            block = []
    return out


def cell(sec: str, column: str, **where) -> str:
    """The one cell of ``column`` in the row whose cells equal ``where`` (column names with spaces: use _)."""
    where = {k.replace("_", " "): v for k, v in where.items()}
    hits = [row[column] for tab in tables(sec) for row in tab
            if column in row and all(row.get(k) == v for k, v in where.items())]
    assert len(hits) == 1, f"{len(hits)} rows with {where} holding {column!r}"
    return hits[0]


def rounded(value: str | float, like: str) -> str:
    """``value`` rounded half-up to the decimals of the quoted ``like``, without its sign."""
    places = len(like.split(".")[1])
    d = abs(Decimal(str(value).replace(",", "")))
    return str(d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def quoted(text: str, pattern: str, where: str) -> tuple[str, ...]:
    m = re.search(pattern, text)
    assert m, f"no quote matching {pattern!r} in {where}: reworded? update the pattern in this test"
    return m.groups()


def check(quotes: tuple[str, ...], values) -> None:
    got = [rounded(v, q) for q, v in zip(quotes, values, strict=True)]
    assert list(quotes) == got, f"quoted {quotes}, bench/RESULTS.md gives {got}"


# --- accuracy_real: the NMC-first reading against the default on the real slices --------------------------

def _nmc_first():
    sec = section("accuracy_real")
    return (cell(sec, "mean IoU", acq="all", method="NMC-first reading (offered)"),
            cell(sec, "mean IoU", acq="all", method="default (pv on)"))


@pytest.mark.parametrize("source", [ui_text, readme_text], ids=["ui", "readme"])
def test_nmc_first_reading_iou(source):
    check(quoted(source(), rf"IoU {NUM} (?:against|vs\.?) {NUM}", source.__name__), _nmc_first())


# --- blur_sweep ---------------------------------------------------------------------------------------------

def _finer(voxel: str, down: str, column: str) -> str:
    return cell(section("blur_sweep"), column, **{"voxel (µm)": voxel, "downsampled": down})


def test_ui_downsampling_advice():
    q = quoted(ui_text(), rf"came out {NUM} too low, downsampled by 2 it was {NUM} off", "the UI")
    check(q, [_finer("0.200", "1", "bias"), _finer("0.200", "2", "med abs det err")])


def test_readme_phase_refinement_figures():
    """The README's figures of the refinement on the blurred demo electrodes (held-out seeds, blur >= 1 voxel)."""
    rows = [r for tab in tables(section("phase_refinement")) for r in tab
            if "on − off F1" in r and float(r["blur (vox)"]) >= 1.0]
    assert len(rows) == 6, rows
    cycled = [-float(r["on − off det err"]) for r in rows if r["electrode"].startswith("cycled")]
    q = quoted(readme_text(), rf"cut the error of the cycled ones by {NUM}–{NUM} and raised F1@0\.5\s+by up to {NUM}",
               "README.md")
    check(q, [min(cycled), max(cycled), max(float(r["on − off F1"]) for r in rows)])


def test_ui_blur_warning_figures():
    q = quoted(ui_text(), rf"the detachment came out too low by {NUM}-{NUM} even with the phases refined", "the UI")
    check(q, [_finer("0.300", "1", "bias"), _finer("0.200", "1", "bias")])


def test_ui_blur_warning_second_generator_figures():
    """The blur warning's figures from the second generator, as bench/RESULTS.md second_generator_downsample has them."""
    q = quoted(ui_text(), rf"at σ = 1\.2 voxel the electrode's median detachment by {NUM}-{NUM}, within {NUM} once "
               rf"downsampled by 2", "the UI")
    rows = [r for tab in tables(section("second_generator_downsample")) for r in tab
            if "full − true" in r and r["blur"] == "1.200"]
    assert len(rows) == 6, rows
    low = [-float(r["full − true"]) for r in rows]
    assert all(v > 0 for v in low)  # "too low"
    check(q, [min(low), max(low), max(abs(float(r["downsampled − true"])) for r in rows)])


def test_readme_finer_voxels():
    text = readme_text()
    q = quoted(text, rf"gave detachment {NUM} or {NUM} too low", "README.md")
    check(q, [_finer("0.300", "1", "bias"), _finer("0.200", "1", "bias")])
    q = quoted(text, rf"came back to an error of {NUM} \(by 3 it was {NUM}, too high by {NUM}", "README.md")
    check(q, [_finer("0.200", "2", "med abs det err"), _finer("0.200", "3", "med abs det err"),
              _finer("0.200", "3", "bias")])


def _gap_range(gap: str) -> list[float]:
    """min and max of the median |error| over both electrodes, σ estimated, at one gap / σ."""
    rows = [r for tab in tables(section("blur_sweep")) for r in tab
            if r.get("σ") == "estimated" and "gap / σ" in r and rounded(r["gap / σ"], gap) == gap]
    assert len(rows) == 2, rows
    v = sorted(float(r["med abs det err"]) for r in rows)
    return [v[0], v[-1]]


@pytest.mark.parametrize("gap", ["2.3", "2.0", "1.6"])
def test_readme_gap_widths(gap):
    q = quoted(readme_text(), rf"too low by {NUM}–{NUM} at 2\.3 σ, {NUM}–{NUM} at 2\.0 σ and {NUM}–{NUM} at 1\.6 σ",
               "README.md")
    i = ["2.3", "2.0", "1.6"].index(gap)
    check(q[2 * i:2 * i + 2], _gap_range(gap))


def test_readme_sigma_estimate_runs_low():
    sec = section("blur_sweep")
    q = quoted(readme_text(), rf"σ estimate also runs low \({NUM} for 1\.0, {NUM} for 1\.25\)", "README.md")
    est = {b: [float(r["σ used"]) for tab in tables(sec) for r in tab
               if r.get("σ") == "estimated" and r.get("blur (voxel)") == b] for b in ("1.000", "1.250")}
    assert all(len(v) == 2 for v in est.values()), est
    for quote, vals in zip(q, est.values()):
        assert {rounded(v, quote) for v in vals} == {quote}, (quote, vals)


# --- real_volume: the size filter -------------------------------------------------------------------------

def test_ui_size_filter_iqr():
    m = re.search(rf"the IQR from {NUM} to {NUM}", _squash(section("real_volume")))
    assert m, "real_volume section lost its IQR sentence"
    q = quoted(ui_text(), rf"narrowed the IQR of detachment from {NUM} to {NUM}", "the UI")
    check(q, m.groups())


# --- accuracy_synthetic: the headline error --------------------------------------------------------------

def test_readme_synthetic_detachment_error():
    sec = section("accuracy_synthetic")
    errs = sorted(float(r["med abs det err"]) for tab in tables(sec) for r in tab
                  if "AP@.5:.95" in r and "seed" not in r)
    assert len(errs) == 3, errs
    q = quoted(readme_text(), rf"median per-particle error is {NUM}–{NUM}", "README.md")
    check(q, [errs[0], errs[-1]])


# --- the model card -----------------------------------------------------------------------------------------

def card_text() -> str:
    return _squash((ROOT / "core" / "nn" / "weights" / "MODEL_CARD.md").read_text())


def test_model_card_thresholds_on_acquisition_b():
    sec = section("accuracy_real")
    q = quoted(card_text(), rf"automatic thresholds on the same slices \([^)]*\): pore {NUM}, CBD {NUM}, NMC {NUM}, "
                            rf"mean {NUM}", "the model card")
    check(q, [cell(sec, col, acq="B", method="default (pv on)", n_slices="6")
              for col in ("IoU pore", "IoU cbd", "IoU nmc", "mean IoU")])


def test_model_card_bfloat16_agreement():
    q = quoted(card_text(), rf"bfloat16 changes {NUM} % of the phase voxels", "the model card")
    check(q, [cell(section("nn_inference_speed"), "phase voxels differing %", native_bfloat16="yes")])


# --- accuracy_real_classifier: brush strokes inside the phases, and where the page says to paint -----------

def _stroke_mode_iou(strokes: str) -> list[str]:
    """Mean IoU of A, B, D in the summary table (the one with a 'vs ORACLE' column) for a stroke mode."""
    rows = [r for tab in tables(section("accuracy_real_classifier")) for r in tab if "vs ORACLE" in r]
    got = {r["acq"]: r["mean IoU"] for r in rows if r["strokes"] == strokes}
    return [got[a] for a in "ABD"]


def test_classifier_stroke_modes_iou():
    text = readme_text()
    q = quoted(text, rf"strokes inside the phases on one slice gave mean per-phase IoU {NUM} / {NUM} / {NUM}",
               "README.md")
    check(q, _stroke_mode_iou("inside"))
    q = quoted(text, rf"the classifier of those first strokes is unsure, the same slices reach {NUM} / {NUM} / {NUM}",
               "README.md")
    check(q, _stroke_mode_iou("edges+overlay"))


def test_classifier_settings_chosen_leave_one_acquisition_out():
    rows = [r for tab in tables(section("classifier_loao")) for r in tab if "gain over v1" in r]
    gains = sorted(float(r["gain over v1"]) for r in rows if r["strokes"] == "inside")
    q = quoted(readme_text(), rf"gained \+{NUM} to \+{NUM} on that acquisition over that random forest", "README.md")
    check(q, [gains[0], gains[-1]])


@pytest.mark.parametrize("source", ["ui", "readme"])
def test_deconvolved_seeding_f1_gain_on_the_grid(source):
    signed = r"([+−-]?\d+\.\d+)"
    text, pattern = {
        "ui": (ui_text(), r"changed F1@0\.5 by " + signed + " to " + signed + r" \(bench/RESULTS\.md, robustness_grid_s13\)"),
        "readme": (readme_text(), r"F1@0\.5 " + signed + " to " + signed + " on the synthetic robustness grid"),
    }[source]
    rows = [r for tab in tables(section("robustness_grid_s13")) for r in tab if "grey-dec F1" in r and "grey F1" in r]
    assert len(rows) == 8, "the grid has 8 cells"
    gains = [float(r["grey-dec F1"]) - float(r["grey F1"]) for r in rows]
    quotes = quoted(text, pattern, source)
    for q, v in zip(quotes, (min(gains), max(gains)), strict=True):
        negative = q[0] in "−-"
        assert negative == (round(v, len(q.split(".")[1])) < 0), f"quoted {q}, bench/RESULTS.md gives {v:+.3f}"
    check(tuple(q.lstrip("+−-") for q in quotes), (min(gains), max(gains)))


def test_readme_seed_size_run_and_its_2048_estimate():
    """The chunked engine's seed-size time and memory, and the 2048³ estimate, as bench/RESULTS.md paper_scale."""
    m = re.search(r"(\d+) s and (\d+\.\d+) GiB anonymous memory for the whole process tree on an idle machine "
                  r"\(`paper_scale`, seed part\); on paper, a 2048³ volume on 16 nodes × 2 workers would take "
                  r"(\d+) to (\d+) s", readme_text())
    assert m, "the README's seed-size sentence changed: update this test's pattern"
    sec = section("paper_scale")
    rows = [r for tab in tables(sec) for r in tab]
    seed = [r for r in rows if r.get("volume", "").startswith("1324×1985×492")]
    paper = [r for r in rows if r.get("volume", "").startswith("2048³")]
    assert len(seed) == 1 and len(paper) == 1
    assert m.group(1) == str(Decimal(seed[0]["wall (s)"].replace(",", "")).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert m.group(2) == rounded(seed[0]["peak anon of the tree (GiB)"], "0.01")
    assert (m.group(3), m.group(4)) == (paper[0]["ideal (s)"], paper[0]["as measured here (s)"])


def test_readme_coarse_separation_accuracy():
    """The coarse-grid separation's F1 figures in the README, as bench/RESULTS.md coarse_separation_* has them."""
    m = re.search(r"F1@0\.5 against the full-resolution labels (\d\.\d+) to (\d\.\d+) on a crop of the seed-size "
                  r"volume .*? and (\d\.\d+) on a volume generated at 0\.1 µm, .*? on the 512³ benchmark .*? "
                  r"(\d\.\d+) at 2× and (\d\.\d+) at 3×", readme_text())
    assert m, "the README's coarse-separation sentence changed: update this test's pattern"

    def f1(name: str) -> list[str]:
        rows = [r for tab in tables(section(name)) for r in tab if r.get("grid", "").endswith("× core")]
        return [r["F1@0.5 vs full res"] for r in rows]

    seed = [rounded(v, "0.01") for v in f1("coarse_separation_seed")]
    assert (m.group(1), m.group(2)) == (min(seed), max(seed))
    assert {rounded(v, "0.1") for v in f1("coarse_separation_native")} == {m.group(3)}
    bench = f1("coarse_separation_bench512")
    assert (m.group(4), m.group(5)) == (rounded(bench[0], "0.001"), rounded(bench[1], "0.001"))


def test_readme_dashboard_memory_of_a_big_zarr_sample():
    """The server's growth on a big Zarr sample in the README, as bench/RESULTS.md dashboard_memory has it."""
    m = re.search(r"on a 1024×512×512 Zarr sample the server grew by (\d+) MiB while the Segment page rendered, "
                  r"against (\d+) MiB before", readme_text())
    assert m, "the README's dashboard-memory sentence changed: update this test's pattern"
    sec = section("dashboard_memory")
    now, before = (cell(sec, "RSS increase, render MiB", **{"app": app, "big sample (z×y×x, uint16)": "1024×512×512"})
                   for app in ("working tree", "`23abcfb`"))
    assert (m.group(1), m.group(2)) == (str(round(float(now))), str(round(float(before))))


# --- accuracy_model: the network against the classic method ---------------------------------------------------

def _model_rows() -> dict[str, list[dict[str, str]]]:
    """The synthetic rows of accuracy_model per method, in the order pristine, cycled-1C, cycled-5C."""
    rows = [r for tab in tables(section("accuracy_model")) for r in tab if "F1@0.5" in r]
    out = {}
    for method in ("classic", "model", "hybrid"):
        got = {r["data"].split()[1].rstrip(","): r for r in rows if r["method"] == method}
        out[method] = [got[d] for d in ("pristine", "cycled-1C", "cycled-5C")]
    return out


def _span(rows, column) -> list[float]:
    v = sorted(float(r[column]) for r in rows)
    return [v[0], v[-1]]


def _inference(precision: str) -> str:
    m = re.search(rf"^- {precision}: \*\*{NUM} Mvoxel/s\*\*", section("accuracy_model"), re.M)
    assert m, f"accuracy_model has no {precision} inference line"
    return m.group(1)


def test_readme_network_against_watershed():
    text, rows = readme_text(), _model_rows()
    q = quoted(text, rf"separates particles as well as the watershed or better \(F1@0\.5 {NUM}–{NUM}, AP {NUM}–{NUM} "
                     rf"against {NUM}–{NUM} and {NUM}–{NUM}\)", "README.md")
    check(q, [*_span(rows["model"], "F1@0.5"), *_span(rows["model"], "AP@.5:.95"),
              *_span(rows["classic"], "F1@0.5"), *_span(rows["classic"], "AP@.5:.95")])
    q = quoted(text, rf"takes the network's particles \(F1@0\.5 {NUM}–{NUM}, median detachment error {NUM}–{NUM}",
               "README.md")
    check(q, [*_span(rows["hybrid"], "F1@0.5"), *_span(rows["hybrid"], "med abs det err")])
    q = quoted(text, rf"bias −{NUM} on the `cycled-5C` demo, where the threshold method's median error is {NUM}",
               "README.md")
    check(q, [rows["model"][2]["med det err (bias)"], rows["classic"][2]["med abs det err"]])
    sec = section("accuracy_model")
    q = quoted(text, rf"mean IoU {NUM} against {NUM}; target", "README.md")
    check(q, [cell(sec, "mean IoU", method=m, data="real nano-CT, held-out acquisition B (6 slices)")
              for m in ("model", "classic")])
    q = quoted(text, rf"Inference: {NUM} Mvoxel/s on 2 cores in bfloat16 \({NUM} in float32\) in the latest run",
               "README.md")
    check(q, [_inference("bfloat16"), _inference("float32")])


def test_model_card_synthetic_rows():
    text, rows = card_text().replace("**", ""), _model_rows()

    def three(method, column):
        return [r[column] for r in rows[method]]

    q = quoted(text, rf"F1@0\.5 {NUM} / {NUM} / {NUM} vs {NUM} / {NUM} / {NUM} \(target", "the model card")
    check(q, three("model", "F1@0.5") + three("classic", "F1@0.5"))
    q = quoted(text, rf"AP@\[\.5:\.95\] {NUM} / {NUM} / {NUM} vs {NUM} / {NUM} / {NUM}", "the model card")
    check(q, three("model", "AP@.5:.95") + three("classic", "AP@.5:.95"))
    q = quoted(text, rf"median \|detachment error\| {NUM} / {NUM} / {NUM} vs {NUM} / {NUM} / {NUM}", "the model card")
    check(q, three("model", "med abs det err") + three("classic", "med abs det err"))
    q = quoted(text, rf"F1 {NUM} / {NUM} / {NUM}, AP {NUM} / {NUM} / {NUM}, detachment error as the classic "
                     rf"method's \({NUM} / {NUM} / {NUM}\)", "the model card")
    check(q, three("hybrid", "F1@0.5") + three("hybrid", "AP@.5:.95") + three("hybrid", "med abs det err"))
    q = quoted(text, rf"{NUM} Mvoxel/s in bfloat16 \(what .*?\), {NUM} Mvoxel/s in float32", "the model card")
    check(q, [_inference("bfloat16"), _inference("float32")])
    q = quoted(text, rf"{NUM}–{NUM} Mvoxel/s with the network, {NUM}–{NUM} with the classic method, {NUM}–{NUM} "
                     rf"hybrid", "the model card")
    check(q, [*_span(rows["model"], "Mvox/s"), *_span(rows["classic"], "Mvox/s"), *_span(rows["hybrid"], "Mvox/s")])


def test_readme_separation_on_the_robustness_grid():
    """The README's greyscale-separation figures, as bench/RESULTS.md robustness_grid_s29 has them (F1@0.5 per cell)."""
    q = quoted(readme_text(), rf"F1@0\.5 {NUM}–{NUM} at a blur of 0\.6 voxel, at most {NUM} below the same separation "
               rf"on the true phases, and {NUM}–{NUM} at a blur of 1\.2 voxel, {NUM}–{NUM} below it "
               rf"\(PoreSpy's `snow_partitioning` on the same scans: {NUM}–{NUM}\)", "README.md")
    rows = [r for tab in tables(section("robustness_grid_s29")) for r in tab if "grey − true" in r]
    assert len(rows) == 8

    def col(blur, name):
        return [float(r[name]) for r in rows if r["blur (vox)"] == blur]

    sharp, blurred = col("0.6", "grey F1"), col("1.2", "grey F1")
    gap_sharp, gap_blurred = [-v for v in col("0.6", "grey − true")], [-v for v in col("1.2", "grey − true")]
    check(q, (min(sharp), max(sharp), max(gap_sharp), min(blurred), max(blurred), min(gap_blurred), max(gap_blurred),
              min(col("1.2", "porespy F1")), max(col("1.2", "porespy F1"))))


def test_readme_separation_at_small_and_big_radii():
    """The README's figures for median radii 5, 28 and 50 voxels, as bench/RESULTS.md robustness_grid_s29_r5 / _s25_r28 /
    _s23_r50 have them; "as well as on the true phases at a blur of 0.6" holds to 0.005 there."""
    q = quoted(readme_text(), rf"median radius of 5 voxels are found less well \({NUM}–{NUM} at a blur of 0\.6, "
               rf"{NUM}–{NUM} at 1\.2; robustness_grid_s29_r5\), and big ones \(median radius 28 and 50 voxels\) as "
               rf"well as on the true phases at a blur of 0\.6 but up to {NUM} below them at 1\.2", "README.md")

    def rows(name):
        return [r for tab in tables(section(name)) for r in tab if "grey − true" in r]

    small = rows("robustness_grid_s29_r5")
    big = rows("robustness_grid_s25_r28") + rows("robustness_grid_s23_r50")
    assert len(small) == 4 and len(big) == 8
    f1 = lambda rs, blur: [float(r["grey F1"]) for r in rs if r["blur (vox)"] == blur]  # noqa: E731
    gap = lambda rs, blur: [float(r["grey − true"]) for r in rs if r["blur (vox)"] == blur]  # noqa: E731
    assert max(abs(v) for v in gap(big, "0.6")) <= 0.005
    check(q, (min(f1(small, "0.6")), max(f1(small, "0.6")), min(f1(small, "1.2")), max(f1(small, "1.2")),
              -min(gap(big, "1.2"))))


def test_readme_separation_bounds():
    """The README's "with the right seeds ... within X of the true phases in every cell", as bench/RESULTS.md
    robustness_bounds_s30 has it: the larger shortfall of its two bounds (ceiling, cores) below the true phases."""
    q = quoted(readme_text(), rf"the same distance-transform flood come within {NUM} of the true phases in every cell "
               rf"of radius 5–14 voxels and blur up to 1\.2 \(robustness_bounds_s30\)", "README.md")
    rows = [r for tab in tables(section("robustness_bounds_s30")) for r in tab if "cores − true" in r]
    assert len(rows) == 12 and {r["radius (vox)"] for r in rows} == {"5", "7", "14"}
    worst = min(float(r[f"{b} − true"]) for r in rows for b in ("ceiling", "cores"))
    assert worst < 0
    check(q, (-worst,))


def test_readme_memory_estimate_margins():
    """The README's estimate-over-peak margins, as bench/RESULTS.md memory_estimate_s21 has them."""
    q = quoted(readme_text(), r"measured (\d+)–(\d+) % above the real peak from 128³ to 384³, (\d+)–(\d+) % for the "
               r"threshold method from 192³ up", "README.md")
    rows = [r for tab in tables(section("memory_estimate_s21")) for r in tab if "estimate / measured" in r]
    size = lambda r: int(r["N"].split("^")[0])  # noqa: E731
    every = [float(r["estimate / measured"]) for r in rows if size(r) >= 128]
    thr = [float(r["estimate / measured"]) for r in rows if size(r) >= 192 and r["method"] == "threshold"]
    pct = lambda v: str(round((v - 1) * 100))  # noqa: E731
    assert q == (pct(min(every)), pct(max(every)), pct(min(thr)), pct(max(thr))), q
    q = quoted(readme_text(), r"seeded on the deconvolved mask, (\d+)–(\d+) % above from\s+128³ to 384³, "
               r"`memory_estimate_s27`", "README.md")
    rows = [r for tab in tables(section("memory_estimate_s27")) for r in tab if "estimate / measured" in r]
    assert {r["method"] for r in rows} == {"threshold", "deconvolved"}
    every = [float(r["estimate / measured"]) for r in rows]
    assert q == (pct(min(every)), pct(max(every))), q


def test_readme_separation_on_the_second_generator():
    """The README's figures for the independent packing generator, as bench/RESULTS.md second_generator has them."""
    q = quoted(readme_text(), rf"at most\s+{NUM} below the true phases at a blur of 0\.6 voxel and {NUM}–{NUM} below "
               rf"them at 1\.0–1\.2 \(PoreSpy {NUM}–{NUM}\)", "README.md")
    tabs = tables(section("second_generator"))
    cells = [r for r in tabs[0] if "grey − true" in r]
    variants = [r for r in tabs[1] if "variant" in r]
    assert len(cells) == 7 and len(variants) == 8
    sharp = [-float(r["grey − true"]) for r in cells if r["blur"] == "0.600"]
    blurred = [-float(r["grey − true"]) for r in cells if r["blur"] != "0.600"]
    porespy = [float(r["porespy f1"]) for r in cells]
    check(q, (max(sharp), min(blurred), max(blurred), min(porespy), max(porespy)))
    # "a float32 or 8-bit scan, Poisson noise or darker CBD do not widen the gap" (within 0.002 of the plain scan)
    gap = {r["variant"]: float(r["grey − true"]) for r in variants}
    base = gap["as above"]
    for name in ("float32 greyscale", "uint8 greyscale", "Poisson noise", "CBD dark (levels 0.15 / 0.25 / 0.90)"):
        assert gap[name] >= base - 0.002, (name, gap[name], base)
    bright = quoted(readme_text(), rf"CBD nearly as bright as the NMC does\s+\({NUM} below at a blur of 1\.0", "README.md")
    check(bright, (-gap["CBD bright (levels 0.15 / 0.60 / 0.90)"],))


# --- speed_memory: the README's "How long it takes" ------------------------------------------------------------

def _speed(sec: str, n: str, tool: str, column: str) -> float:
    return float(cell(section(sec), column, N=n, tool=tool).replace(",", ""))


def test_readme_speed_demo_like_and_blurred():
    q = quoted(readme_text(), rf"512³ voxels is analysed end to end in {NUM} s, {NUM} times PoreSpy's time, with a peak "
               rf"of {NUM} bytes per voxel \(section speed_memory_s29\)", "README.md")
    d = "speed_memory_s29"
    check(q, [_speed(d, "512^3", "ours", "wall s"),
              _speed(d, "512^3", "porespy", "wall s") / _speed(d, "512^3", "ours", "wall s"),
              _speed(d, "512^3", "ours", "B/voxel")])
    q = quoted(readme_text(), rf"takes {NUM} s at 512³ \({NUM} times PoreSpy, {NUM} bytes per voxel\) and {NUM} s at "
               rf"256³ \({NUM} times; section speed_memory_packing_s29\)", "README.md")
    p = "speed_memory_packing_s29"
    check(q, [_speed(p, "512^3", "ours", "wall s"),
              _speed(p, "512^3", "porespy", "wall s") / _speed(p, "512^3", "ours", "wall s"),
              _speed(p, "512^3", "ours", "B/voxel"), _speed(p, "256^3", "ours", "wall s"),
              _speed(p, "256^3", "porespy", "wall s") / _speed(p, "256^3", "ours", "wall s")])


# --- the blur warning's advice by particle size (second_generator_downsample_*) -------------------------------

def _downsample_rows(name: str) -> list[dict[str, str]]:
    rows = [r for tab in tables(section(name)) for r in tab if r.get("blur") == "1.200"]
    assert len(rows) == 6, (name, len(rows))
    return rows


def test_ui_small_particles_keep_their_resolution_figures():
    """The UI's "keep this resolution" sentence and the comment of DOWNSAMPLE_MIN_RADIUS, from the second generator's
    downsampling checks at radius 10, 14, 20 and 28 voxels (blur 1.2)."""
    import statistics

    small = _downsample_rows("second_generator_downsample_r10") + _downsample_rows("second_generator_downsample_r14")
    q = quoted(ui_text(), rf"downsampled by 2, the median detachment came out up to {NUM} too high, against -{NUM} to "
               rf"\+{NUM} at full resolution", "the UI")
    full = [float(r["full − true"]) for r in small]
    check(q, (max(float(r["downsampled − true"]) for r in small), -min(full), max(full)))
    src = _squash((ROOT / "core" / "phases" / "blur.py").read_text().replace("#:", ""))
    q = quoted(src, rf"was {NUM} / {NUM} at radius 10, {NUM} / {NUM} at 14, {NUM} / {NUM} at 20 and {NUM} / {NUM} at 28 "
               "voxels", "core/phases/blur.py")
    med = []
    for name in ("second_generator_downsample_r10", "second_generator_downsample_r14",
                 "second_generator_downsample_r20", "second_generator_downsample"):
        rows = _downsample_rows(name)
        med += [statistics.median(abs(float(r[c])) for r in rows) for c in ("full − true", "downsampled − true")]
    check(q, med)
    # a run's warning (core, before the particles are known): radius 10-14, downsampled / full resolution
    src = _squash((ROOT / "core" / "pipeline.py").read_text())
    q = quoted(src, rf"radius 10-14 voxels: a median detachment error of {NUM}-{NUM} downsampled, {NUM} at full "
               "resolution", "core/pipeline.py")
    check(q, (min(med[3], med[1]), max(med[3], med[1]), max(med[0], med[2])))


def test_readme_slice_against_volume():
    """The README's single-slice figures, as bench/RESULTS.md slice_vs_volume has them: the pooled slices' largest
    gap to the true 3D median, and one slice's range per electrode."""
    text = readme_text()
    q = quoted(text, rf"gave the median detachment within {NUM} of the true 3D median", "README.md")
    rows = [r for tab in tables(section("slice_vs_volume")) for r in tab if "one slice: min–max" in r]
    assert [r["electrode"] for r in rows] == ["pristine", "cycled-1C", "cycled-5C"]
    check(q, (max(abs(float(r["slices − true 3D"])) for r in rows),))
    q = quoted(text, rf"one slice alone \(about 24 sections, 64 × 64 µm\) ranged {NUM}–{NUM} \(pristine\), "
                     rf"{NUM}–{NUM} \(cycled-1C\) and {NUM}–{NUM} \(cycled-5C\)", "README.md")
    check(q, [v for r in rows for v in r["one slice: min–max"].split("–")])


def test_classifier_scales_and_one_slice_strokes_as_quoted():
    """The README's figures for the classifier's feature scales (bench/RESULTS.md classifier_scales) and the Segment
    page's range of the strokes-on-one-slice protocol (accuracy_real_classifier, 'inside' strokes)."""
    sec = section("classifier_scales")
    q = quoted(readme_text(), rf"fixed in µm lost {NUM} mean IoU on the nano-CT slices read at 0.1 µm instead of 1 µm, "
                              rf"and {NUM}–{NUM} on the demo electrodes", "README.md")
    rows = [r for tab in tables(sec) for r in tab]
    voxels = float(next(r["mean IoU"] for r in rows if r.get("scales", "").startswith("voxels:")))
    um_01 = float(next(r["mean IoU"] for r in rows if r.get("scales", "").startswith("µm: 0.5-8 µm at 0.1 µm")))
    gains = [float(r["voxels − µm"]) for r in rows if "voxels − µm" in r]
    assert len(gains) == 6
    check(q, (voxels - um_01, min(gains), max(gains)))
    q = quoted(ui_text(), rf"simulated strokes on one slice reached a mean per-phase IoU of {NUM}-{NUM}",
               "ui/segment_view.py")
    inside = [float(r["mean IoU"]) for tab in tables(section("accuracy_real_classifier")) for r in tab
              if r.get("strokes") == "inside" and "pairs" in r]
    assert len(inside) == 3
    check(q, (min(inside), max(inside)))


def test_readme_deconvolved_seeding_on_small_particle_slices():
    """The README's figures for the slice rule (bench/RESULTS.md slice_blur, the cells where 'auto' now refines
    fully, against session 32's 'auto' there, slice_blur_s32) and its constants (core.seeding)."""
    from core.seeding import AUTO_BLUR, AUTO_SLICE_BLUR_DEPTH

    text = readme_text()
    q = quoted(text, rf"where it is {NUM} pixel or more and at least {NUM} of the NMC's mean depth", "README.md")
    check(q, (AUTO_BLUR, AUTO_SLICE_BLUR_DEPTH))
    now = [r for tab in tables(section("slice_blur")) for r in tab if r.get("auto refine") == "on" and "seed" not in r]
    before = [r for tab in tables(section("slice_blur_s32")) for r in tab if "auto refine" in r and "seed" not in r]
    assert len(now) == 6
    old = [next(b["auto F1"] for b in before if all(b[k] == r[k] for k in ("blur", "radius", "noise"))) for r in now]
    q = quoted(text, rf"raised F1@0.5 from {NUM}-{NUM} to {NUM}-{NUM}", "README.md")
    f = [float(v) for v in old]
    g = [float(r["auto F1"]) for r in now]
    check(q, (min(f), max(f), min(g), max(g)))


def test_readme_classifier_islands():
    """The README's figures for the classifier's small islands (bench/RESULTS.md classifier_islands, acquisitions A
    and B per slice)."""
    rows = [r for tab in tables(section("classifier_islands")) for r in tab if "slice" in r and r["acq"] in "AB"]
    assert len(rows) == 9
    q = quoted(readme_text(), r"isolated specks under 20 pixels had been (\d+)-(\d+) of the (\d+)-(\d+) particle "
                              r"sections of each slice of A and B, each counted as a particle; (\d+)-(\d+) remain, "
                              rf"and the phases' mean IoU moves by {NUM} or less", "README.md")
    ints = lambda col: [int(r[col]) for r in rows]  # noqa: E731
    assert list(q[:6]) == [str(v) for v in (min(ints("raw specks")), max(ints("raw specks")), min(ints("raw n")),
                                            max(ints("raw n")), min(ints("islands merged specks")),
                                            max(ints("islands merged specks")))]
    every = [r for tab in tables(section("classifier_islands")) for r in tab if "slice" in r]
    moved = max(abs(float(r["islands merged IoU"]) - float(r["raw IoU"])) for r in every)
    assert round(moved, 3) <= float(q[6])


def test_readme_unet_single_slices():
    """The README's U-Net single-slice figures, as bench/RESULTS.md unet_single_slices has them."""
    rows = {r["acq"]: r for tab in tables(section("unet_single_slices")) for r in tab if "slices" in r}
    q = quoted(readme_text(), rf"was {NUM} / {NUM} / {NUM} for A / B / D instead of {NUM} / {NUM} /\s?{NUM} now",
               "README.md")
    check(q, [rows[a][c] for c in ("edge (before) IoU", "middle (now) IoU") for a in "ABD"])
    q = quoted(card_text(), rf"A {NUM} / B {NUM} / D {NUM}, against {NUM} / {NUM} / {NUM} now",
               "core/nn/weights/MODEL_CARD.md")
    check(q, [rows[a][c] for c in ("edge (before) IoU", "middle (now) IoU") for a in "ABD"])


def test_readme_fill_rule_is_the_code_s():
    """The README's fill paragraph states core.phases.fill's constants (not bench figures: the rule itself)."""
    from core.phases.fill import FILL_CENTRE_RATIO, FILL_MIN_FACE_SHARE, PLANES

    text = readme_text()
    m = re.search(r"holds (\d+) % or more of the voxels on the volume's faces and a tenth as many in its centre, "
                  r"read on (\w+) z planes", text)
    assert m, "the README's fill paragraph was reworded: update this pattern"
    assert int(m.group(1)) == round(100 * FILL_MIN_FACE_SHARE) and FILL_CENTRE_RATIO == 0.1
    assert m.group(2) == {5: "five"}.get(len(PLANES))
    assert "`bench/RESULTS.md` fill_effect" in text and section("fill_effect")


def test_readme_fill_as_edge_figures():
    """The README's medians of the demo with a circular field of view: the fill's faces as the volume's edge, the
    volume without the fill, and the fill's faces as pore (bench fill_effect, 96×256², seeds 4 and 5)."""
    sec = section("fill_effect")
    med = lambda seed, vol: cell(sec, "median detachment", section="96×256²", seed=seed, volume=vol)  # noqa: E731
    q = quoted(readme_text(), rf"the table's median detachment is {NUM} / {NUM} \(seeds 4 / 5\) against {NUM} / "
               rf"{NUM} without the fill; with the fill's faces counted as pore it was {NUM} / {NUM}", "README.md")
    check(q, [med(s_, v) for v in ("with the fill", "no fill", "with the fill, its faces as pore (before)")
              for s_ in ("4", "5")])


def test_readme_disc_rule_is_the_code_s():
    from core.phases.fill import DISC_MIN_IOU

    m = re.search(r"the disc of its area covers it with an intersection over union of ([0-9.]+) or more", readme_text())
    assert m, "the README's disc sentence was reworded: update this pattern"
    assert float(m.group(1)) == DISC_MIN_IOU


def test_readme_fill_packing_figures():
    """The README's phase accuracy beside the fill of a blurred packing (bench fill_effect, seeds 3 and 4)."""
    sec = section("fill_effect")
    col = "phases right, within 6 voxels of the circle"
    q = quoted(readme_text(), rf"they matched the packing's truth at {NUM} / {NUM} in the ring within 6 voxels of the "
               rf"circle, now {NUM} / {NUM}, without the fill {NUM} / {NUM}\)", "README.md")
    check(q, [cell(sec, col, seed=s_, volume=v) for v in ("with the fill, read beside it, refined up to it",
                                                         "with the fill", "no fill") for s_ in ("3", "4")])
    before = "with the fill, read across it and refined up to it (before)"
    q = quoted(readme_text(), rf"its sharp edge read as a blur of {NUM} / {NUM}, which left the phases unrefined and "
               rf"the median detachment at {NUM}\)", "README.md")
    check(q, [cell(sec, "blur read (voxels)", seed="3", volume=before), cell(sec, "blur read (voxels)", seed="4",
                                                                             volume=before),
              cell(sec, "median detachment", seed="3", volume=before)])
    assert cell(sec, "median detachment", seed="4", volume=before) == "0.000"


def test_readme_drift_rule_is_the_code_s():
    """The README's drift paragraph states core.phases.shading's warning share."""
    from core.phases.shading import SHADING_WARN

    text = readme_text()
    m = re.search(r"vary\s+by (\d+) % of the pore-NMC contrast or more", text)
    assert m, "the README's drift paragraph was reworded: update this pattern"
    assert int(m.group(1)) == round(100 * SHADING_WARN)
    assert "`bench/RESULTS.md` shading_drift" in text and section("shading_drift")


# --- classifier_detachment / shading_drift (session 38) ------------------------------------------------------

def _cd_rows(phases: str) -> dict[str, dict[str, str]]:
    rows = {r["electrode"]: r for tab in tables(section("classifier_detachment")) for r in tab
            if r.get("phases") == phases}
    assert set(rows) == {"pristine", "cycled-1C", "cycled-5C"}, phases
    return rows


def _low(phases: str) -> list[float]:
    """How far the median detachment of ``phases`` fell below the true median, per demo electrode."""
    return [float(r["true median"]) - float(r["median detachment"]) for r in _cd_rows(phases).values()]


def _minmax(values) -> list[float]:
    return [min(values), max(values)]


def test_classifier_edge_bias_as_quoted_in_the_ui():
    """The Segment page's line on the classifier's detachment bias (the Particles page says the same one)."""
    inside, edges = _low("classifier (inside strokes)"), _low("classifier (edges strokes)")
    thr = [abs(v) for v in _low("thresholds (default)")]
    text = ui_text()
    q = quoted(text, rf"strokes inside each phase gave a median detachment {NUM}-{NUM} too low, strokes half along "
                     rf"the edges between phases \(just inside each\) {NUM}-{NUM} too low, where thresholds came "
                     rf"within {NUM}\.", "the UI (Segment page)")
    check(q[:4], _minmax(inside) + _minmax(edges))
    assert max(thr) <= float(q[4])
    # (the Particles page says the Segment page's sentence, segment_view.CLASSIFIER_EDGE_NOTE: checked above)


def test_classifier_edge_bias_and_narrow_slices_as_quoted_in_the_readme():
    from core.classify import NARROW_SHARE

    text, sec = readme_text(), _squash(section("classifier_detachment"))
    inside = _cd_rows("classifier (inside strokes)")
    order = ("pristine", "cycled-1C", "cycled-5C")
    q = quoted(text, rf"gave a median detachment {NUM}–{NUM} too low \(median \|error\| of the particles {NUM} / "
                     rf"{NUM} / {NUM} for pristine / cycled-1C / cycled-5C, thresholds {NUM}–{NUM}\), strokes half "
                     rf"along the edges {NUM}–{NUM} too low; .*? would mend most of it there \({NUM}–{NUM}\)",
               "README.md")
    thr = [float(r["median abs error"]) for r in _cd_rows("thresholds (default)").values()]
    pv = [float(r["median abs error"]) for r in _cd_rows("classifier (inside strokes) + partial-volume correction")
          .values()]
    check(q, _minmax(_low("classifier (inside strokes)")) + [inside[e]["median abs error"] for e in order]
          + _minmax(thr) + _minmax(_low("classifier (edges strokes)")) + _minmax(pv))
    # the real slices' IoU with and without the correction: the section's reading
    real = re.search(rf"the correction {NUM} / {NUM} / {NUM} -> {NUM} / {NUM} / {NUM}", sec).groups()
    check(quoted(text, rf"mean IoU A / B / D {NUM} / {NUM} / {NUM} -> {NUM} / {NUM} / {NUM}\), so it is not "
                       "applied", "README.md"), real)
    # the narrow-slice rule: the code's share, and the pore IoU before (the reading) and now (the table)
    assert re.search(r"or by the volume's where its own is under half of that", text) and NARROW_SHARE == 0.5
    before = re.search(rf"classifier\s+pore IoU {NUM} / {NUM} / {NUM}", sec).groups()
    q = quoted(text, rf"the empty slices had read as CBD, the pore IoU {NUM}–{NUM}, now {NUM}–{NUM};", "README.md")
    now = [float(r["IoU pore / CBD / NMC"].split(" / ")[0]) for r in inside.values()]
    check(q, _minmax([float(v) for v in before]) + _minmax(now))


def test_readme_network_drift_figures():
    """The README's figures of the 3D U-Net on a drifting scan (bench/RESULTS.md shading_drift, model rows)."""
    rows = [r for tab in tables(section("shading_drift")) for r in tab if r.get("method") == "model"]
    pick = lambda seed, drift, how: next(r for r in rows if (r["seed"], r["gain drift"], r["analysis"])  # noqa: E731
                                         == (seed, drift, how))
    thirds = lambda r: [float(v) for v in r["median by third of z (found)"].split(" / ")]  # noqa: E731
    seeds = sorted({r["seed"] for r in rows})
    q = quoted(readme_text(), rf"drift read as {NUM}–{NUM} of the contrast: the median detachment of the last third "
                              rf"of z {NUM} / {NUM} -> {NUM} / {NUM} on two seeds, .*?each third's median back "
                              rf"within {NUM} of the analysis without the drift", "README.md")
    read = [float(pick(s, "0.300", "as it is")["drift read"]) for s in seeds]
    check(q[:6], _minmax(read) + [thirds(pick(s, "0.000", "as it is"))[2] for s in seeds]
          + [thirds(pick(s, "0.300", "as it is"))[2] for s in seeds])
    back = max(abs(a - b) for s in seeds for a, b in zip(thirds(pick(s, "0.300", "flattened")),
                                                         thirds(pick(s, "0.000", "as it is"))))
    assert round(back, 3) <= float(q[6])


# --- alignment: slices shifted against one another ------------------------------------------------------------

def test_readme_alignment_figures():
    """The README's reading of aligned volumes (demo electrodes, the real calendered volume, noisy stacks) and of a
    stack drifting 1.476 pixels a slice (noise 0.11); the particles found in that stack as it drifts and aligned;
    how far the offsets lay from the truth (noise 0.11 and 0.44, drifts 0-2.2) and the time of a 512³ alignment."""
    sec = section("alignment")
    [aligned, drifting, _, mended, mend_timing] = tables(sec)
    steps = [float(r["median step (px)"]) for r in aligned if r["median step (px)"] != "–"]
    drift = [r for r in drifting if r["volume"] == "stack drifting +0.7 / -1.3 px a slice, noise 0.11"]
    assert len(drift) == 1
    q = quoted(readme_text(), rf"aligned volumes read 0\.0–{NUM} pixel: .*? a drift of {NUM} pixels a slice reads "
               rf"{NUM}\)", "README.md")
    check(q, [max(steps), drift[0]["true step (px)"], drift[0]["median step (px)"]])
    counts = {r["stack"]: r["particles: as it drifts / aligned / aligned by the true offsets"].split(" / ")
              for r in mended}
    q = quoted(readme_text(), r"a test stack drifting 1\.48 pixels a slice: (\d+) particles found where the same "
               r"stack aligned gives (\d+); with noise of 0\.44 of the contrast (\d+) where (\d+)\)", "README.md")
    assert list(q) == counts["drifting +0.7 / -1.3 px a slice, noise 0.11"][:2] + \
        counts["drifting +0.7 / -1.3 px a slice, noise 0.44"][:2]
    worst = max(float(v) for r in mended for v in r["largest offset error y / x (px)"].split(" / "))
    q = quoted(readme_text(), rf"each offset lay within {NUM} pixels of where its content was; an alignment of 512³ "
               r"took (\d+) s", "README.md")
    assert float(q[0]) == worst
    [t512] = [float(r["s"]) for r in mend_timing if r["shape (z×y×x)"] == "512×512×512"]
    assert int(q[1]) == round(t512)

# --- real_geometry_grey: the real calendered geometry read back as a greyscale scan ------------------------------

def test_readme_real_geometry_figures():
    """The README's ranges of the median-detachment errors by method, the CBD share and the particle counts."""
    rows = [r for tab in tables(section("real_geometry_grey")) for r in tab]
    by = lambda method, col: [float(r[col]) for r in rows if r["method"] == method]  # noqa: E731
    text = readme_text()
    default = by("threshold (default)", "error")
    check(quoted(text, rf"reads a median detachment {NUM}–{NUM} too high by the default threshold path", "README"),
          [min(default), max(default)])
    check(quoted(text, rf"\(true {NUM} and {NUM};", "README"), by("true phases", "median detachment"))
    shares = [float(r["pore / CBD / NMC"].split("/")[1]) for r in rows if r["method"] == "threshold (default)"]
    true_cbd = {round(float(r["pore / CBD / NMC"].split("/")[1]), 3) for r in rows if r["method"] == "true phases"}
    q = quoted(text, rf"the CBD share drops from {NUM} to {NUM}–{NUM}\)", "README")
    assert {float(q[0])} == true_cbd
    check(q[1:], [min(shares), max(shares)])
    nopv = by("threshold, no partial-volume correction", "error")
    check(quoted(text, rf"\), {NUM}–{NUM} too low without the correction", "README"), [-max(nopv), -min(nopv)])
    unet = by("3D U-Net", "error")
    check(quoted(text, rf"and {NUM}–{NUM} too high by the 3D U-Net", "README"), [min(unet), max(unet)])
    found = [int(r["particles"]) for r in rows if r["method"] != "true phases"]
    q = quoted(text, r"The particles are found alike \((\d+)–(\d+) of (\d+) and (\d+)\)", "README")
    assert [int(v) for v in q] == [min(found), max(found), *map(int, by("true phases", "particles"))]


def test_readme_refine_start_figures():
    """The README's errors of the refinement started from the plain thresholds (real geometry, demos) against the
    default's on the demos, and how often the energy picks the closer start (bench/refine_start.py)."""
    rows = [r for tab in tables(section("refine_start")) for r in tab if "from thresholds error" in r]
    real = [float(r["from thresholds error"]) for r in rows if r["scan"].startswith("real geometry")]
    demo = [float(r["from thresholds error"]) for r in rows if r["scan"].startswith("demo")]
    default = [float(r["default error"]) for r in rows if r["scan"].startswith("demo")]
    assert len(real) == 4 and len(demo) == len(default) == 9
    text = readme_text()
    # (the signs are part of the words: a sign that changes fails the pattern)
    check(quoted(text, rf"the same scans read −{NUM} to \+{NUM} off", "README"), [-min(real), max(real)])
    check(quoted(text, rf"read as contact \(−{NUM} to −{NUM}, against −{NUM} to \+{NUM} by default\)", "README"),
          [-min(demo), -max(demo), -min(default), max(default)])
    picks = [r for r in rows if r.get("energy picks") not in (None, "–")]
    q = quoted(text, r"it picks the closer one in (\d+) of (\d+) scans", "README")
    assert [int(v) for v in q] == [sum(r["energy picks"] == r["closer start"] for r in picks), len(picks)]


# --- classifier_detachment_real (session 51) ------------------------------------------------------------------------

def test_classifier_detachment_on_the_real_slices_as_quoted_in_the_ui():
    """The Segment page's note and the *Classify other samples* help: how far a classifier of one painted slice read
    the median detachment of a slice of its acquisition from that of the expert labels, either way."""
    rows = [r for tab in tables(section("classifier_detachment_real")) for r in tab if "difference (range)" in r
            and "pairs (painted, classified)" in r]
    assert {r["acquisition"] for r in rows} == {"A", "B", "D"} and {r["strokes"] for r in rows} == {"inside", "edges"}
    ends = [float(v) for r in rows for v in r["difference (range)"].split(" to ")]
    text = ui_text()
    for pattern in (rf"read the median detachment of a slice of the same acquisition from {NUM} too low to {NUM} too "
                    r"high against its expert labels",
                    rf"their median detachment came out from {NUM} too low to {NUM} too high"):
        check(quoted(text, pattern, "ui/segment_view.py"), (-min(ends), max(ends)))
    check(quoted(readme_text(), rf"read the median detachment of a slice of the same acquisition from {NUM} too low to "
                                rf"{NUM} too high against its expert labels", "README.md"), (-min(ends), max(ends)))
    from ui.advice import ALMOST_LOOSE
    from ui.segment_view import ONE_SLICE_IOU, TWO_SLICES_IOU

    for name, quoted_iou in (("classifier_detachment_real", ONE_SLICE_IOU),
                             ("classifier_detachment_real_two", TWO_SLICES_IOU)):
        inside = {r["acquisition"]: float(r["mean IoU"]) for tab in tables(section(name)) for r in tab
                  if r.get("strokes") == "inside" and "mean IoU" in r and "pairs (painted, classified)" in r}
        check(tuple(f"{v:.2f}" for v in quoted_iou), tuple(inside[a] for a in "ABD"))
    text = readme_text()
    for name, iou, error in (("classifier_detachment_real_two", r"classified the slices not painted with mean per-phase "
                              rf"IoU {NUM} / {NUM} / {NUM}", rf"mean absolute error was {NUM} / {NUM} / {NUM}"),
                             ("classifier_detachment_real", rf"one slice\s+{NUM} / {NUM} / {NUM}\), and their median",
                              rf"\(one slice\s+{NUM} / {NUM} / {NUM}; `bench/RESULTS.md` classifier_detachment_real_two")):
        rows = {r["acquisition"]: r for tab in tables(section(name)) for r in tab
                if r.get("strokes") == "inside" and "pairs (painted, classified)" in r}
        check(quoted(text, iou, "README.md"), tuple(float(rows[a]["mean IoU"]) for a in "ABD"))
        check(quoted(text, error, "README.md"),
              tuple(float(rows[a]["difference, absolute (mean)"]) for a in "ABD"))

    assert f"Where the median detachment is above {ALMOST_LOOSE:g} " in readme_text()
