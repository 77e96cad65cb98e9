"""core.chunked.LazyArray (a volume read box by box) and the one-slice preview of a lazily read volume: the same
global values and slab as the volume in memory, from the sampled blocks and a slab only."""

from __future__ import annotations

import numpy as np
import pytest

from core import phases as ph
from core.chunked import LazyArray, open_lazy_array
from core.synth import demo_electrode


class Counting:
    """A reader as LazyArray takes it (3 contiguous slices), recording the boxes it was asked for."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.boxes = a, a.shape, a.dtype, []

    def __getitem__(self, key):
        assert len(key) == 3 and all(isinstance(k, slice) and k.step in (None, 1) for k in key), key
        self.boxes.append(key)
        return self.a[key].copy()

    def voxels(self) -> list[int]:
        return [int(np.prod([k.stop - k.start for k in b])) for b in self.boxes]


@pytest.fixture(scope="module")
def grey():
    g = demo_electrode("cycled-1C", rng=1, shape=(40, 36, 44)).greyscale
    return np.ascontiguousarray(np.concatenate([g] * 5, axis=0))  # 200 slices, 316,800 voxels


KEYS = [5, -1, (slice(None), 7), (Ellipsis, 3), (slice(10, 50), slice(None, None, 4)), (3, slice(5, 30, 7), 2),
        (slice(3, 3),), (slice(None, None, 9), Ellipsis, slice(1, 40, 13)), np.int64(2)]


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_lazy_array_indexes_as_numpy_reading_one_box(grey, key):
    r = Counting(grey)
    a = LazyArray(r)
    got = a[key]
    assert isinstance(got, np.ndarray) and np.array_equal(got, grey[key]) and got.flags.writeable
    assert len(r.boxes) == 1


def test_lazy_array_is_never_converted_whole(grey):
    a = LazyArray(Counting(grey))
    assert a.shape == grey.shape and a.dtype == grey.dtype and a.size == grey.size and a.nbytes == grey.nbytes
    assert np.shape(a) == grey.shape and np.ndim(a) == 3
    assert np.array_equal(np.take(a, 7, axis=1), grey[:, 7])
    with pytest.raises(TypeError, match="read by index"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.moveaxis(a, 0, 1)
    with pytest.raises(TypeError):
        np.take(a, [1, 2], axis=0)
    with pytest.raises(IndexError, match="out of bounds"):
        a[200]
    with pytest.raises(IndexError, match="positive step"):
        a[::-1]
    with pytest.raises(TypeError, match="ints and slices"):
        a[[1, 2]]
    with pytest.raises(ValueError, match="3D"):
        LazyArray(np.zeros((3, 4)))


def test_a_memory_map_is_read_as_a_copy(tmp_path, grey):
    np.save(tmp_path / "v.npy", grey)
    a = LazyArray(np.load(tmp_path / "v.npy", mmap_mode="r"))
    s = a[3]
    assert type(s) is np.ndarray and s.flags.writeable and np.array_equal(s, grey[3])


def test_open_lazy_array_of_a_zarr_store(tmp_path, grey):
    import zarr

    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=grey.shape, chunks=(16, 16, 16), dtype=grey.dtype)
    z[:] = grey
    a, lazy = open_lazy_array(tmp_path / "v.zarr", spacing=0.5)
    assert a.shape == grey.shape and lazy.spacing == (0.5, 0.5, 0.5) and lazy.fmt == "zarr"
    assert np.array_equal(a[50:60, 3::2], grey[50:60, 3::2])


def test_grey_sample_of_one_block_is_the_flat_stride_read_in_slabs(grey, monkeypatch):
    import core.phases.preview as P

    monkeypatch.setattr(P, "_SLAB_VOXELS", 5000)  # 3 slices a slab: the stride runs across slab borders
    for n in (1000, 7777, 10**7):
        r = Counting(grey)
        s = ph.grey_sample(LazyArray(r), n)
        assert np.array_equal(s, grey.reshape(-1)[:: max(1, grey.size // n)])
        assert max(r.voxels()) <= 3 * 36 * 44
        assert np.array_equal(ph.grey_sample(grey, n), s)
    with pytest.raises(ValueError, match="n must be"):
        ph.grey_sample(grey, 0)


PARAMS = [ph.SegmentParams(), ph.SegmentParams(denoise="gaussian", denoise_size=1.0),
          ph.SegmentParams(denoise="median", denoise_size=3, pv_sigma=0.8),
          ph.SegmentParams(partial_volume=False, min_island=1)]


def _same_globals(a: ph.PreviewGlobals, b: ph.PreviewGlobals) -> None:
    assert np.array_equal(a.sample, b.sample)
    assert (a.suggested, a.pv_sigma, a.sigma_source, a.i_nmc, a.alternative, a.denoise, a.nan_fill) == \
           (b.suggested, b.pv_sigma, b.sigma_source, b.i_nmc, b.alternative, b.denoise, b.nan_fill)


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"{p.denoise}-{p.partial_volume}")
def test_the_preview_of_a_lazy_volume_equals_the_one_in_memory(grey, params, monkeypatch):
    import core.phases.preview as P

    monkeypatch.setattr(P, "_SLAB_VOXELS", 20_000)
    mem = ph.preview_globals(grey, params)
    r = Counting(grey)
    lazy = ph.preview_globals(LazyArray(r), params)
    _same_globals(mem, lazy)
    lo, hi = mem.suggested
    for axis, index in ((0, 100), (1, 0), (2, 43)):
        r.boxes.clear()
        cm = ph.prepare_preview(grey, axis, index, params, globals=mem)
        cl = ph.prepare_preview(LazyArray(r), axis, index, params, globals=lazy)
        assert np.array_equal(cm.slab, cl.slab) and (cm.centre, cm.rows) == (cl.centre, cl.rows)
        assert np.array_equal(ph.preview_from(cm, lo, hi), ph.preview_from(cl, lo, hi))
        assert len(r.boxes) == 1 and r.boxes[0][axis].stop - r.boxes[0][axis].start < grey.shape[axis]


def _blocks_of(shape):  # a lower size for core's sampling rule: 8 blocks of 16 slices above 100 k voxels
    nz = shape[0]
    if int(np.prod(shape)) <= 100_000 or nz <= 128:
        return [(0, nz)]
    return [(int(z), int(z) + 16) for z in np.linspace(0, nz - 16, 8).round()]


@pytest.mark.parametrize("params", PARAMS[:2], ids=lambda p: p.denoise)
def test_a_volume_sampled_by_blocks_is_read_by_blocks_only(params, monkeypatch):
    import importlib

    import core.phases.preview as P

    D = importlib.import_module("core.phases.denoise")  # (core.phases.denoise is also the function)
    monkeypatch.setattr(D, "_sample_blocks", _blocks_of)
    monkeypatch.setattr(P, "_sample_blocks", _blocks_of)
    g = demo_electrode("pristine", rng=2, shape=(40, 40, 40)).greyscale
    v = np.ascontiguousarray(np.concatenate([g] * 20, axis=0))  # 800 slices
    mem = ph.preview_globals(v, params)
    r = Counting(v)
    lazy = ph.preview_globals(LazyArray(r), params)
    _same_globals(mem, lazy)
    halo = int(np.ceil(4 * params.denoise_size)) + 2 if params.denoise != "none" else 0
    # the raw sample and the denoised one read 8 blocks of 16 slices (with the halo), the image model the
    # central block of 128 slices (with the halo): never the whole volume
    assert max(r.voxels()) <= (128 + 2 * halo) * 40 * 40
    assert sum(r.voxels()) <= (8 * 16 + 8 * (16 + 2 * halo) + 128 + 2 * halo) * 40 * 40 < v.size
    assert np.array_equal(ph.grey_sample(LazyArray(v), 10_000),
                          np.concatenate([v[a:b].reshape(-1) for a, b in _blocks_of(v.shape)])[:: 8 * 16 * 1600 // 10_000])


def test_a_float_volume_with_a_few_nans_previews_as_in_memory(grey):
    v = grey.astype(np.float32)
    v[7, 3, 5] = np.nan
    v[150, 30, 2] = np.inf
    params = ph.SegmentParams(denoise="gaussian", denoise_size=1.0)
    mem, lazy = ph.preview_globals(v, params), ph.preview_globals(LazyArray(v), params)
    _same_globals(mem, lazy)  # one block: the same fill value
    assert lazy.nan_fill == ph.nonfinite_fill(v)
    cm = ph.prepare_preview(v, 0, 7, params, globals=mem)
    cl = ph.prepare_preview(LazyArray(v), 0, 7, params, globals=lazy)
    assert np.array_equal(cm.slab, cl.slab)


def test_a_lazy_volume_is_checked_on_its_sampled_blocks():
    with pytest.raises(ValueError, match="constant in its sampled blocks"):
        ph.preview_globals(LazyArray(np.full((4, 5, 6), 3, np.uint16)))
    with pytest.raises(ValueError, match="constant"):
        ph.preview_globals(LazyArray(np.full((4, 5, 6), 3, np.float32)))
    v = np.ones((4, 5, 6), np.float32)
    v[0] = np.nan
    with pytest.raises(ValueError, match="25.0% non-finite voxels"):
        ph.preview_globals(LazyArray(v))
    with pytest.raises(TypeError, match="boolean"):
        ph.preview_globals(LazyArray(np.zeros((4, 5, 6), bool)))
    with pytest.raises(ValueError, match="empty"):
        ph.prepare_preview(LazyArray(np.zeros((0, 5, 6), np.uint8)), 0, 0)


def test_a_segmented_file_is_read_box_by_box_as_phase_codes(tmp_path):
    import tifffile

    from core.io import load_phases

    seg = np.array([0, 100, 200], np.uint8)[np.random.default_rng(0).integers(0, 3, (9, 10, 11))]
    tifffile.imwrite(tmp_path / "s.tif", seg, compression="zlib")
    a, lazy = open_lazy_array(tmp_path / "s.tif", phase_map="0=pore,100=cbd,200=nmc")
    whole = load_phases(tmp_path / "s.tif", "0=pore,100=cbd,200=nmc").data
    assert a.dtype == np.uint8 and a.shape == whole.shape
    assert np.array_equal(a[4], whole[4]) and np.array_equal(a[:, 2:7, ::3], whole[:, 2:7, ::3])
    b, _ = open_lazy_array(tmp_path / "s.tif", phase_map="0=pore,100=cbd")
    with pytest.raises(ValueError, match="s.tif"):
        b[3]  # a value the map lacks: refused when a box holding it is read
    with pytest.raises(ValueError):
        open_lazy_array(tmp_path / "s.tif", phase_map="0=rock")  # a bad map: before any voxel is read


def test_the_training_pairs_of_a_lazy_volume_are_its_painted_slices(grey):
    from core.scribbles import Scribbles, classifier_pairs

    lab = np.zeros(grey.shape[1:], np.uint8)
    lab[::2] = 2
    s = Scribbles.empty(grey.shape).with_slice(0, 17, lab).with_slice(2, 5, np.ones((200, 36), np.uint8))
    r = Counting(grey)
    got, want = classifier_pairs(LazyArray(r), s, 0.5), classifier_pairs(grey, s, 0.5)
    assert all(np.array_equal(a, b) for a, b in zip(got[0], want[0])) and got[2] == want[2]
    assert sorted(r.voxels()) == [36 * 44, 200 * 36]  # the two painted slices, nothing else


@pytest.mark.parametrize("factor, dtype, per_read", [(2, np.uint16, 1 << 22), (3, np.uint16, 1), (3, np.float32, 5000)])
def test_a_downsampled_file_is_read_plane_block_by_plane_block_as_downsample_gives_it(tmp_path, grey, factor, dtype,
                                                                                      per_read, monkeypatch):
    from core.chunked.lazy import _Downsampled
    from core.io.downsampling import downsample

    monkeypatch.setattr(_Downsampled, "READ_VOXELS", per_read)  # one plane block a read, or several
    v = (grey[:50] * (0.37 if dtype == np.float32 else 1)).astype(dtype)
    np.save(tmp_path / "g.npy", v)
    a, _ = open_lazy_array(tmp_path / "g.npy", downsample=factor)
    want = downsample(np.load(tmp_path / "g.npy", mmap_mode="r"), factor)[0]
    assert a.shape == want.shape and a.dtype == np.float32
    for key in (3, (slice(2, 9), slice(1, None, 2)), (slice(None), 4), (Ellipsis, slice(3, 5))):
        assert np.array_equal(a[key], want[key]), key
    g = ph.SegmentParams()
    mem, lazy = ph.preview_globals(want, g), ph.preview_globals(a, g)
    _same_globals(mem, lazy)
    with pytest.raises(ValueError, match="not downsampled"):
        open_lazy_array(tmp_path / "g.npy", downsample=2, phase_map="0=pore")
    with pytest.raises(ValueError, match="smaller than the downsample factor"):
        np.save(tmp_path / "t.npy", grey[:1])
        open_lazy_array(tmp_path / "t.npy", downsample=2)
