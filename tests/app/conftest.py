"""Fixtures for the dashboard tests: a temporary workspace (env var), tiny demo electrodes, clean caches."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from apphelpers import DEMO_SIZE  # noqa: E402


def _clear_caches():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory):
    """A workspace with the three demo electrodes (48^3) added and analysed, built once per session."""
    from core.runner import run_analysis
    from core.workspace import Workspace
    from ui import startup

    root = tmp_path_factory.mktemp("template") / "ws"
    ws = Workspace(root)
    startup.add_demos(ws, DEMO_SIZE)
    ws.set_meta(startup.META_KEY, "1")
    for s in ws.list_samples():
        run_analysis(ws, s.id, ws.load_volume(s))
    return root


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Environment of an empty workspace under tmp_path; caches cleared before and after."""
    monkeypatch.setenv("DETACH_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("DETACH_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DETACH_DEMO_SIZE", str(DEMO_SIZE))
    # jobs run inside the AppTest script run, so a click's result is there when run() returns; the cluster
    # path has its own tests (tests/core/test_jobs.py, the browser test)
    monkeypatch.setenv("DETACH_JOBS", "inline")
    (tmp_path / "data").mkdir()
    _clear_caches()
    yield tmp_path
    _clear_caches()


@pytest.fixture
def empty_ws(env):
    from core.workspace import Workspace

    return Workspace(env / "ws")


@pytest.fixture
def seeded_ws(env, seeded_template):
    """A copy of the seeded workspace for one test."""
    from core.workspace import Workspace

    shutil.copytree(seeded_template, env / "ws")
    return Workspace(env / "ws")




@pytest.fixture
def reads(monkeypatch):
    """Every read of a Zarr array: the number of voxels each returned."""
    import numpy as np
    import zarr

    seen: list[int] = []
    get = zarr.Array.__getitem__

    def counted(self, key):
        out = get(self, key)
        seen.append(int(np.size(out)))
        return out

    monkeypatch.setattr(zarr.Array, "__getitem__", counted)
    return seen


@pytest.fixture(scope="module")
def fine_template(tmp_path_factory):
    """Two 64^3 synthetic electrodes with small particles (~90 each, ~30 inside the volume), analysed from their
    true phases: this checks the page, not the segmentation (which, on these small particles, reads much of the
    thin detachment gap as CBD)."""
    from core.runner import run_analysis
    from core.synth import ElectrodeParams, make_electrode
    from core.workspace import Workspace

    import numpy as np

    root = tmp_path_factory.mktemp("fine") / "ws"
    ws = Workspace(root)
    for i, mean in enumerate((0.1, 0.4)):
        e = make_electrode(ElectrodeParams(shape=(64, 64, 64), radius_median_um=2.2, radius_min_um=1.2,
                                           detachment_mean=mean), rng=20 + i)
        path = root.parent / f"fine{i}.npy"
        np.save(path, e.greyscale)
        s = ws.add_sample(f"fine-{i}", str(path), spacing=e.spacing, axis=0, separator_side="start")
        run_analysis(ws, s.id, e.phases, presegmented=True)
    return root


@pytest.fixture
def fine_ws(env, fine_template):
    import shutil

    from core.workspace import Workspace

    shutil.copytree(fine_template, env / "ws")
    return Workspace(env / "ws")
