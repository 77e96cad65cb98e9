"""Segment page: the estimated peak memory of the full analysis is shown before the run, and a run that would not
fit is not offered."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.memory import BUDGET_ENV, MemoryFit
from ui import state
from ui.memory_view import memory_line

from apphelpers import TIMEOUT, no_exception, page

PAGE = page("2_Segment.py")


def _open(seeded_ws):
    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    return s, at.run()


def test_estimate_shown_and_run_offered_when_it_fits(seeded_ws, monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    s, at = _open(seeded_ws)
    no_exception(at)
    lines = [c.value for c in at.caption if c.value.startswith("Estimated peak memory of this run: about")]
    assert len(lines) == 1 and "available on this machine." in lines[0] and "threshold" in lines[0]
    assert not at.button(key=state.k(state.SEG_RUN, s.id)).disabled


def test_run_not_offered_when_it_would_not_fit(seeded_ws, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "1K")
    s, at = _open(seeded_ws)
    no_exception(at)
    warn = [w.value for w in at.warning if w.value.startswith("Estimated peak memory of this run")]
    assert len(warn) == 1 and f"allowed by {BUDGET_ENV}: the run would not fit" in warn[0]
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled  # a browser user cannot click it


def test_bad_budget_is_a_sentence(seeded_ws, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "lots")
    s, at = _open(seeded_ws)
    no_exception(at)
    assert any(w.value.startswith(f"{BUDGET_ENV}='lots' is not a memory size") for w in at.warning)
    assert at.button(key=state.k(state.SEG_RUN, s.id)).disabled


def test_memory_line_words():
    ok = MemoryFit(int(1.5e9), int(20e9), "memory", (512, 512, 512), "3D U-Net")
    assert memory_line(ok) == ("Estimated peak memory of this run: about 1.5 GB (512×512×512 voxels, 3D U-Net); "
                               "20.0 GB available on this machine.")
    bad = MemoryFit(int(7.3e9), int(2e9), "address space", (1024, 1024, 1024), "threshold")
    assert "left under this server's address-space limit: the run would not fit" in memory_line(bad)


def test_filled_nonfinite_voxels_are_reported_on_the_page(seeded_ws):
    """A run that filled a few NaN voxels says so under its metrics (the count is in the provenance)."""
    import warnings

    import numpy as np

    from core.runner import run_analysis

    s = next(x for x in seeded_ws.list_samples() if x.name == "pristine")
    vol = seeded_ws.load_volume(s).astype(np.float32)
    vol[1, 2, 3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_analysis(seeded_ws, s.id, vol)
    assert a.provenance["nonfinite_filled"] == 1
    _, at = _open(seeded_ws)
    no_exception(at)
    assert any(w.value.startswith("Voxels without a finite grey value (NaN or infinite): 1;") for w in at.warning)
