"""core.chunked.measure_chunked: the table of a chunked label volume equals the whole-volume particle table."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from core.chunked import measure_chunked, separator_side_chunked
from core.codes import CBD, NMC
from core.metrics import COLUMNS, detect_separator_side, particle_table
from core.synth import ElectrodeParams, make_electrode

SHAPE = (48, 56, 40)
SPACING = (0.5, 0.4, 0.45)


@pytest.fixture(scope="module")
def electrode():
    """Cracked particles cut by 16-voxel chunks; a hollow shell wider than a chunk; a crack open at a volume face."""
    e = make_electrode(ElectrodeParams(shape=SHAPE, spacing=SPACING, radius_median_um=2.5, radius_max_um=4.0,
                                       crack_prob=0.8), rng=7)
    phases, labels = e.phases.copy(), e.labels.astype(np.int32)
    zz, yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    r2 = (zz - 24) ** 2 + (yy - 28) ** 2 + (xx - 20) ** 2
    shell, cavity = r2 <= 15**2, r2 <= 9**2
    labels[shell] = 0
    phases[shell] = NMC
    labels[shell & ~cavity] = labels.max() + 1
    phases[cavity] = CBD  # a CBD-filled crack of the shell, across chunk faces
    # a particle at the z = 0 face with a hole enclosed within that face (a crack cut by the volume edge)
    labels[0:4, 2:9, 2:9], phases[0:4, 2:9, 2:9] = labels.max() + 1, NMC
    labels[0:2, 4:7, 4:7], phases[0:2, 4:7, 4:7] = 0, 0
    return labels, phases


@pytest.fixture(autouse=True)
def _sync():
    with dask.config.set(scheduler="sync"):
        yield


@pytest.mark.parametrize("chunks", [16, (20, 13, 40)])
def test_chunked_table_equals_whole_volume_table(electrode, chunks):
    labels, phases = electrode
    whole = particle_table(labels, phases, SPACING, separator_side="auto")
    assert len(whole) > 40 and (whole["crack_fraction"] > 0).sum() >= 10
    big = whole.loc[whole["label"] == labels.max() - 1]
    assert float(big["crack_fraction"].iloc[0]) > 0.1  # the shell's cavity counts as its crack
    assert float(whole.loc[whole["label"] == labels.max(), "crack_fraction"].iloc[0]) > 0
    lab_in, ph_in = labels.copy(), phases.copy()
    table = measure_chunked(da.from_array(labels, chunks=chunks), da.from_array(phases, chunks=chunks), SPACING)
    assert np.array_equal(labels, lab_in) and np.array_equal(phases, ph_in)
    assert list(table.columns) == list(COLUMNS) and len(table) == len(whole)
    assert table.attrs == whole.attrs
    _assert_same_columns(table, whole)


def _assert_same_columns(table, whole):
    """Every column of :data:`COLUMNS` equal: floats to 1e-9 relative (NaN where NaN), the others exactly."""
    for col in COLUMNS:
        a, b = table[col].to_numpy(), whole[col].to_numpy()
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=0, equal_nan=True, err_msg=col)
        else:
            assert np.array_equal(a, b), col


@pytest.mark.parametrize("axis", [0, 2])
def test_chunked_depth_over_the_electrode_equals_the_whole_volume_table(electrode, axis):
    """depth_from="electrode": the same slices found from the summed per-chunk NMC counts, the same depth_frac."""
    labels, phases = electrode
    lab, ph = labels.copy(), phases.copy()
    ph[:10] = 0  # a pore margin before the electrode along z (its particles' voxels there are gone)
    lab[:10] = 0
    whole = particle_table(lab, ph, SPACING, axis=axis, separator_side="start", depth_from="electrode")
    table = measure_chunked(da.from_array(lab, chunks=16), da.from_array(ph, chunks=16), SPACING, axis=axis,
                            separator_side="start", depth_from="electrode")
    assert table.attrs == whole.attrs
    assert whole.attrs["depth_extent"][0] == (10 if axis == 0 else 0)
    np.testing.assert_allclose(table["depth_frac"], whole["depth_frac"], rtol=1e-9, atol=0)


def test_zarr_stores_read_by_the_tasks_give_the_same_table(electrode, tmp_path):
    import zarr

    labels, phases = electrode
    stores = []
    for name, arr in (("labels", labels), ("phases", phases)):
        z = zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=arr.shape, dtype=arr.dtype, chunks=(16, 16, 16),
                              zarr_format=3)
        z[...] = arr
        stores.append(z)
    table = measure_chunked(*stores, SPACING)
    ref = measure_chunked(da.from_array(labels, chunks=16), da.from_array(phases, chunks=16), SPACING)
    pd.testing.assert_frame_equal(table, ref)


def test_separator_side_and_refusals(electrode):
    labels, phases = electrode
    for axis in (0, 1, 2):
        assert separator_side_chunked(da.from_array(phases, chunks=16), axis) == detect_separator_side(phases, axis)
    with pytest.raises(TypeError, match="dask array"):
        measure_chunked(labels, da.from_array(phases), SPACING)
    with pytest.raises(ValueError, match="same shape"):
        measure_chunked(da.from_array(labels), da.from_array(phases[1:]), SPACING)
    with pytest.raises(ValueError, match="separator_side"):
        measure_chunked(da.from_array(labels), da.from_array(phases), SPACING, separator_side="left")


def test_faces_to_a_fill_count_as_the_edge_as_in_the_whole_volume_table(electrode, tmp_path):
    """``no_data`` (the fill outside a circular field of view, core.phases.fill_region): the chunked table equals
    the whole-volume one with the same region, from a dask array and from a Zarr store alike."""
    import zarr

    labels, phases = electrode
    lab, ph = labels.copy(), phases.copy()
    yy, xx = np.mgrid[: SHAPE[1], : SHAPE[2]]
    outside = np.broadcast_to((yy - 27.5) ** 2 + (xx - 19.5) ** 2 > 22**2, SHAPE).copy()
    lab[outside], ph[outside] = 0, 0  # no material there: pore in the phases
    whole = particle_table(lab, ph, SPACING, separator_side="start", no_data=outside)
    plain = particle_table(lab, ph, SPACING, separator_side="start")
    assert (whole["area_edge_um2"] > plain["area_edge_um2"]).sum() >= 5
    store = zarr.create_array(str(tmp_path / "no_data.zarr"), shape=SHAPE, dtype=np.uint8, chunks=(16, 16, 16),
                              zarr_format=3)
    store[...] = outside.view(np.uint8)
    for nd in (da.from_array(outside, chunks=(20, 13, 40)), store):
        table = measure_chunked(da.from_array(lab, chunks=16), da.from_array(ph, chunks=16), SPACING,
                                separator_side="start", no_data=nd)
        _assert_same_columns(table, whole)
    with pytest.raises(ValueError, match="no_data"):
        measure_chunked(da.from_array(lab), da.from_array(ph), SPACING, separator_side="start",
                        no_data=da.from_array(outside[1:]))
