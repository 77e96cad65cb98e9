"""A sample too big for the whole-volume run (a test-lowered memory budget): the Segment page sends it to the chunked
engine, the job stores phases and labels as Zarr, and every page shows them a slice (or a strided crop) at a time."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui import state

from apphelpers import TIMEOUT, no_exception, page

CHUNK = 20  # a 40³ volume in 8 chunks



@pytest.fixture
def big(empty_ws, demo_tif_40, monkeypatch):
    """A 40³ file sample over the memory budget: the whole-volume run does not fit it, chunks of 20³ do.

    The chunked engine's fixed costs (a process base per worker, the phase pass's halo) are set to 0 so that a
    tiny volume can be too big for the whole-volume run; the rule is the real one. Reading a result whole fails
    the test (``Workspace._whole`` is where the workspace reads a phases / labels volume whole).
    """
    import core.memory as M
    from core.workspace import Workspace

    monkeypatch.setattr(M, "_CHUNK_PROCESS_BASE", 0)
    monkeypatch.setattr(M, "_CHUNK_PHASE_HALO", 0)
    whole = M.memory_fit((40, 40, 40), np.uint16, resident_input=True).needed
    chunked = M.chunked_peak_bytes(CHUNK, CHUNK // 2, 4, 2)
    assert chunked < whole
    monkeypatch.setattr(M, "_limits", lambda network=False: [((whole + chunked) // 2, "budget")])
    monkeypatch.setenv("DETACH_CHUNK_SIZE", str(CHUNK))

    read = Workspace._whole

    def whole_read(self, analysis, attr, key):
        a = analysis if not isinstance(analysis, int) else self.get_analysis(analysis)
        if self.is_chunked(a):
            raise AssertionError(f"the {key} of the chunked analysis {a.id} were read whole")
        return read(self, analysis, attr, key)

    monkeypatch.setattr(Workspace, "_whole", whole_read)
    return empty_ws, empty_ws.add_sample("big", str(demo_tif_40), spacing=0.4)


def _open(path, sample_id):
    at = AppTest.from_file(page(path), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = sample_id
    return at.run()


def test_the_segment_page_runs_a_big_sample_on_the_chunked_engine(big):
    ws, s = big
    at = _open("2_segment.py", s.id)
    no_exception(at)
    note = [i.value for i in at.info if "runs on the chunked engine" in i.value]
    assert len(note) == 1 and f"chunks of {CHUNK}³ voxels" in note[0] and "stored as Zarr" in note[0]
    run = at.button(key=state.k(state.SEG_RUN, s.id))
    assert not run.disabled
    run.click().run()  # an inline job (the test environment): the chunked engine on dask's threads
    no_exception(at)
    a = ws.latest_analysis(s.id)
    assert a is not None and ws.is_chunked(a), ws.latest_analysis(s.id, status=None).error
    assert a.provenance["chunking"]["chunk_size"] == CHUNK
    assert any(f"Analysis {a.id} done: {a.n_particles} particles" in m.value for m in at.success)
    # the phase fractions come from the counts the run recorded, not from the volume
    n = np.asarray(a.provenance["phase_voxels"], float)
    shown = float(next(m.value for m in at.metric if m.label == "NMC (volume)").rstrip("%")) / 100
    assert shown == pytest.approx(n[2] / n.sum(), abs=0.0005)


def test_detach_chunked_always_sends_a_small_sample_to_the_chunked_engine(empty_ws, demo_tif_40, monkeypatch):
    s = empty_ws.add_sample("small", str(demo_tif_40), spacing=0.4)
    at = _open("2_segment.py", s.id)
    assert not any("chunked engine" in i.value for i in at.info)  # fits: the whole-volume run, as before
    monkeypatch.setenv("DETACH_CHUNKED", "always")
    monkeypatch.setenv("DETACH_CHUNK_SIZE", str(CHUNK))
    at.run()
    no_exception(at)
    note = [i.value for i in at.info if "chunked engine" in i.value]
    assert len(note) == 1 and note[0].startswith("This run goes to the chunked engine, as DETACH_CHUNKED=always asks")
    assert not at.button(key=state.k(state.SEG_RUN, s.id)).disabled


@pytest.fixture
def analysed(big, demo_tif_40, monkeypatch):
    """The big sample analysed on the chunked engine, and a second sample (the same file) analysed whole."""
    import core.memory as M
    from core.runner import run_analysis, run_chunked_analysis

    ws, s = big
    with dask.config.set(scheduler="sync"):
        a = run_chunked_analysis(ws, s.id, chunk_size=CHUNK)
    small = ws.add_sample("small", str(demo_tif_40), spacing=0.4)
    with monkeypatch.context() as m:
        m.setattr(M, "_limits", lambda network=False: [])  # no budget: the whole-volume run
        run_analysis(ws, small.id)
    return ws, s, a


def test_the_particles_page_shows_slices_of_a_chunked_analysis(analysed):
    ws, s, a = analysed
    labels = ws.open_labels(a)
    at = _open("3_particles.py", s.id)
    no_exception(at)
    assert len(at.image) == 1 and "coloured by detachment" in at.image[0].proto.imgs[0].caption
    ch = a.provenance["chunking"]
    assert any(c.value.startswith(f"Analysed chunk by chunk (chunks of {CHUNK}³ voxels, particle halo {ch['halo']} ")
               for c in at.caption)
    beyond = [w.value for w in at.warning if "reached the edge of their chunk's window" in w.value]
    assert len(beyond) == (1 if ch["beyond_halo"] else 0)
    again = [c.value for c in at.caption if "labelled again with a halo of" in c.value]
    assert ch["wide_halo"] >= ch["halo"]
    assert len(again) == (1 if ch["widened"] else 0)
    if ch["widened"]:
        assert f"{ch['widened']} chunk(s) were labelled again with a halo of {ch['wide_halo']} voxels" in again[0]
    table = ws.load_table(a)
    assert len(table) == a.n_particles > 5
    # picking a particle jumps to its slice, read from the Zarr store
    pick = int(table["label"].iloc[len(table) // 2])
    at.selectbox(key=state.k(state.PART_SELECT, s.id)).select(pick).run()
    no_exception(at)
    caption = at.image[0].proto.imgs[0].caption
    assert f"particle {pick} highlighted" in caption
    axis = at.session_state[state.k(state.PART_AXIS, s.id)]
    index = at.session_state[state.k(state.PART_INDEX, s.id, axis)]
    where = [slice(None)] * 3
    where[axis] = index
    assert (labels[tuple(where)] == pick).any()
    assert not any("is not in this slice" in c.value for c in at.caption)


def test_the_compare_page_shows_a_chunked_analysis_slice_and_refuses_its_whole_volume_sections(analysed):
    ws, s, a = analysed
    at = _open("4_compare.py", s.id)
    no_exception(at)
    assert any(c.caption.startswith("big: z = ") for i in at.image for c in i.proto.imgs)
    refusals = [c.value for c in at.caption if "ran chunk by chunk" in c.value]
    assert len(refusals) == 2  # the contact graph and the sweep: one sentence each, nothing run
    assert all(f"Analysis #{a.id} ran chunk by chunk on a 40×40×40-voxel volume" in r for r in refusals)


def test_a_compare_page_of_chunked_analyses_only_says_why_its_whole_volume_sections_are_empty(analysed):
    """QA walk 11: under each refusal it said "No analysed electrode chosen." with an analysed electrode chosen."""
    from core.runner import run_chunked_analysis

    ws, s, a = analysed
    [small] = [x for x in ws.list_samples() if x.name == "small"]
    with dask.config.set(scheduler="sync"):
        run_chunked_analysis(ws, small.id, chunk_size=CHUNK)  # its latest analysis chunked too
    at = _open("4_compare.py", s.id)
    no_exception(at)
    infos = [i.value for i in at.info]
    assert "None of the chosen analyses can be shown here (why is said above)." in infos
    assert "None of the chosen analyses can be swept (why is said above)." in infos
    assert not [i for i in infos if i.startswith("No analysed electrode")]



def test_the_3d_page_draws_a_chunked_analysis_from_a_strided_read(analysed, monkeypatch):
    import ui.cache

    ws, s, a = analysed
    monkeypatch.setattr(ui.cache, "LAZY_3D_VOXELS", 20**3)  # the 40³ labels are read every 2nd voxel
    at = AppTest.from_file(page("5_3d.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.session_state[state.V3_MODE] = "image"
    at.run()
    no_exception(at)
    assert len(at.image) == 1
    cap = next(c.value for c in at.caption if "triangles" in c.value)
    assert "labels sampled every 2 voxels" in cap and "a narrower depth range draws the particles finer" in cap
    # the count is the analysis's, not that of the labels read strided (QA: 1791 of 1864 said on a chunked run)
    assert int(cap.split(" particles")[0]) == a.n_particles
    assert " particles with their centre in this depth range (of the analysis's table); " in cap
    assert "drawn from the labels read every 2 voxels" in cap


def test_one_particle_of_a_chunked_analysis_reads_only_its_window(analysed, reads):
    """Face by face, a chunked analysis's particle is read through its window of the Zarr stores (never whole), and
    its faces' shares are its table row's."""
    ws, s, a = analysed
    table = ws.load_table(a)
    row = table.loc[table["detachment"].notna()].sort_values("volume_um3").iloc[-1]
    at = AppTest.from_file(page("5_3d.py"), default_timeout=TIMEOUT)
    at.session_state[state.SAMPLE_ID] = s.id
    at.session_state[state.V3_SHOW] = "one"
    at.session_state[state.V3_MODE] = "image"
    at.session_state[state.k(state.V3_PARTICLE, s.id)] = int(row["label"])
    reads.clear()
    at.run()
    no_exception(at)
    assert len(at.image) == 1
    cap = next(c.value for c in at.caption if "voxel faces" in c.value)
    assert f"= {row['detachment']:.3f}." in cap and "differ from the particle table" not in cap
    whole = int(np.prod(ws.open_labels(a).shape))
    assert reads and max(reads) < whole  # windows, not the volume


def test_a_depth_range_counts_the_particles_centred_in_it():
    import pandas as pd

    import ui.cache as cache

    t = pd.DataFrame({"label": [1, 2, 3, 4], "centroid_z_um": [0.1, 1.9, 2.0, 7.9], "centroid_y_um": [0.0] * 4,
                      "centroid_x_um": [0.0] * 4})
    ref = object()
    orig = cache.table
    try:
        cache.table = lambda r: t
        # voxel k covers centres k·s − s/2 .. k·s + s/2 (s = 0.5 µm): slices [2, 4) hold centres 0.75 .. 1.75 µm
        assert cache.centred_particles(ref, 0, (None, None), (0.5, 1, 1)) == 4
        assert cache.centred_particles(ref, 0, (0, 4), (0.5, 1, 1)) == 1
        assert cache.centred_particles(ref, 0, (4, None), (0.5, 1, 1)) == 3
        assert cache.centred_particles(ref, 0, (4, 5), (0.5, 1, 1)) == 2
    finally:
        cache.table = orig


def test_a_strided_read_of_a_depth_range_lies_where_the_whole_one_does(analysed, monkeypatch):
    import ui.cache as cache
    from ui import view3d

    ws, s, a = analysed
    monkeypatch.setattr(cache, "LAZY_3D_VOXELS", 20**3)
    ref = cache.ResultRef.of(ws, a)
    spacing = tuple(s.spacing)
    got = cache.surfaces3d(ref, (0.5, 1.0), 100_000, False, 0, "start", spacing)
    assert got["read_stride"] == 2
    first, last = a.provenance["depth_extent"]  # depth 0.5..1 of the electrode's slices, separator at the start
    crop = (slice(round(first + 0.5 * (last - first)), last + 1), slice(None), slice(None))
    whole, _ = view3d.particle_mesh(ws.open_labels(a)[...], spacing, cache.detachment_by_label(ref), crop=crop)
    # the same box in µm (x0, x1, y0, y1, z0, z1), to within the strided voxel
    np.testing.assert_allclose(got["particles"].bounds, whole.bounds, atol=2 * max(spacing) + 1e-9)
    assert got["particles"].bounds[4] >= crop[0].start * spacing[0] - 2 * spacing[0]


def test_blockwise_phase_fractions_and_strided_crops_of_a_zarr_array():
    import zarr

    from ui import compute, view3d

    rng = np.random.default_rng(0)
    phases = rng.integers(0, 3, size=(23, 17, 11), dtype=np.uint8)
    arr = zarr.create_array(zarr.storage.MemoryStore(), shape=phases.shape, dtype=np.uint8, chunks=(7, 5, 11))
    arr[...] = phases
    assert compute.phase_fractions_blockwise(arr) == compute.phase_fractions(phases)
    crop, step = view3d.strided_crop(phases.shape, (slice(5, 20), slice(None), slice(None)), 600)
    assert step == 2 and crop == (slice(5, 20, 2), slice(0, 17, 2), slice(0, 11, 2))  # 8×9×6 = 432 voxels
    assert view3d.strided_crop(phases.shape, (slice(5, 20), slice(None), slice(None)), 431)[1] == 3
    assert arr[crop].size <= 600 and np.array_equal(arr[crop], phases[crop])
    assert view3d.strided_crop(phases.shape, (slice(None),) * 3, 10**6)[1] == 1


def test_the_chunked_note_says_which_chunks_took_a_second_try():
    """``ui.particles_view.chunked_note`` with chunks labelled again (and a label still beyond the wider window), and
    with a provenance written before the second try (no "wide_halo")."""

    def page(chunking):
        import types

        from ui.particles_view import chunked_note

        ws = types.SimpleNamespace(is_chunked=lambda analysis: True)
        chunked_note(ws, types.SimpleNamespace(provenance={"chunking": chunking}))

    at = AppTest.from_function(page, kwargs={"chunking": {"chunk_size": 64, "halo": 9, "wide_halo": 18,
                                                          "beyond_halo": 1, "widened": 3}}).run()
    no_exception(at)
    assert "3 chunk(s) were labelled again with a halo of 18 voxels" in at.caption[0].value
    assert at.warning[0].value.startswith("1 particle label(s) reached the edge of their chunk's window (halo 9 "
                                          "voxels, 18 on a second try)")
    at = AppTest.from_function(page, kwargs={"chunking": {"chunk_size": 64, "halo": 9, "beyond_halo": 2}}).run()
    no_exception(at)
    assert "labelled again" not in at.caption[0].value
    assert at.warning[0].value.startswith("2 particle label(s) reached the edge of their chunk's window (halo 9 "
                                          "voxels):")
