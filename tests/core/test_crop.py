"""A region of interest (crop) read alone: every format whole and chunk-wise, the input spec's forms, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.chunked import open_lazy
from core.inputs import FileInput, InputError, input_from_dict, input_from_source, input_to_dict, open_input
from core.inputs import source_options
from core.io import InputFileError, load_volume, save_tiff

VOL = (np.arange(10 * 12 * 14).reshape(10, 12, 14) % 251).astype(np.uint16)
BOX = [[2, 9], [1, 11], [3, 14]]
SLICES = (slice(2, 9), slice(1, 11), slice(3, 14))


@pytest.fixture(params=["tiff", "npy", "raw", "zarr", "hdf5"])
def volume_file(tmp_path, request):
    kind = request.param
    if kind == "tiff":
        path, kw = tmp_path / "v.tif", {}
        save_tiff(path, VOL, (0.5, 0.5, 0.5))
    elif kind == "npy":
        path, kw = tmp_path / "v.npy", {}
        np.save(path, VOL)
    elif kind == "raw":
        path, kw = tmp_path / "v.raw", {"shape": VOL.shape, "dtype": "uint16"}
        path.write_bytes(VOL.tobytes())
    elif kind == "hdf5":
        import h5py

        path, kw = tmp_path / "v.h5", {}
        with h5py.File(path, "w") as f:
            f.create_dataset("scan", data=VOL, chunks=(4, 5, 6))
    else:
        import zarr

        path, kw = tmp_path / "v.zarr", {}
        zarr.open_array(str(path), mode="w", shape=VOL.shape, chunks=(4, 5, 6), dtype=VOL.dtype)[:] = VOL
    return path, kw


def test_crop_reads_the_box_whole_and_chunk_wise(volume_file):
    path, kw = volume_file
    v = load_volume(path, crop=BOX, **kw)
    np.testing.assert_array_equal(v.data, VOL[SLICES])
    assert v.data.flags.c_contiguous
    assert v.metadata["crop"] == BOX and v.metadata["shape_read"] == list(VOL.shape)
    lazy = open_lazy(path, crop=BOX, chunks=4, **kw)
    assert lazy.data.chunks[0] == (4, 3)  # the chunks start at the box's corner
    np.testing.assert_array_equal(np.asarray(lazy.data), VOL[SLICES])
    np.testing.assert_array_equal(np.asarray(lazy.reader[1:3, 2:4, 5:9]), VOL[SLICES][1:3, 2:4, 5:9])
    assert lazy.spacing == v.spacing and lazy.metadata["crop"] == BOX


def test_crop_of_a_compressed_tiff_decodes_only_the_pages_of_the_box(tmp_path):
    """A compressed stack is never decoded whole for a crop: the memory allocated is that of the box's pages,
    not of the volume (64 pages of 256² uint16: 8 MiB; the box's 8 pages: 1 MiB)."""
    import tracemalloc

    import tifffile

    big = (np.arange(64 * 256 * 256, dtype=np.uint32).reshape(64, 256, 256) % 4093).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", big, compression="zlib")
    box = [[20, 28], [10, 74], [100, 164]]
    load_volume(tmp_path / "c.tif", crop=[[0, 1], [0, 1], [0, 1]])  # the readers' modules imported first
    tracemalloc.start()
    try:
        v = load_volume(tmp_path / "c.tif", crop=box)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(v.data, big[20:28, 10:74, 100:164])
    assert not v.metadata["mmap"] and v.metadata["crop"] == box
    assert peak < big.nbytes / 3, f"{peak / 2**20:.1f} MiB allocated for a crop of an 8 MiB volume"


def test_crop_beyond_the_volume_or_malformed_is_refused_in_one_sentence(tmp_path):
    np.save(tmp_path / "v.npy", VOL)
    with pytest.raises(InputFileError, match=r"the crop 0:15 along x reaches beyond v\.npy, which has 14 voxels"):
        load_volume(tmp_path / "v.npy", crop=[[0, 10], [0, 12], [0, 15]])
    with pytest.raises(InputFileError, match=r"the crop 0:15 along x reaches beyond v\.npy"):
        open_lazy(tmp_path / "v.npy", crop=[[0, 10], [0, 12], [0, 15]])
    with pytest.raises(ValueError, match=r"crop along y must run from a start >= 0 to a larger stop, got 5:5"):
        load_volume(tmp_path / "v.npy", crop=[[0, 10], [5, 5], [0, 14]])
    with pytest.raises(TypeError, match="crop must be 3 \\(start, stop\\) pairs"):
        load_volume(tmp_path / "v.npy", crop=[0, 10, 0, 12, 0, 14])


def test_input_spec_carries_the_crop_through_every_form(tmp_path):
    np.save(tmp_path / "v.npy", VOL)
    spec = FileInput(path=tmp_path / "v.npy", crop=BOX, downsample=1)
    assert spec.crop == ((2, 9), (1, 11), (3, 14)) and "cropped to z 2:9, y 1:11, x 3:14" in spec.describe()
    assert input_from_dict(json.loads(json.dumps(input_to_dict(spec)))) == spec
    assert input_from_source(str(spec.path), source_options(spec)) == spec
    np.testing.assert_array_equal(open_input(spec).volume, VOL[SLICES])
    # crop first, then the downsampling (of the box)
    from core.io.downsampling import downsample

    down = open_input(FileInput(path=tmp_path / "v.npy", crop=BOX, downsample=2))
    np.testing.assert_array_equal(down.volume, downsample(VOL[SLICES].astype(np.float32), 2)[0])
    assert down.info["crop"] == BOX and down.info["shape_read"] == [7, 10, 11]
    with pytest.raises(InputError, match="v.npy: crop along z must run from a start >= 0"):
        FileInput(path=tmp_path / "v.npy", crop=[[3, 1], [0, 1], [0, 1]])
    with pytest.raises(InputError, match="input crop: crop must be 3"):
        input_from_dict({"path": "v.npy", "crop": [1, 2]})


def test_cli_analyze_with_crop_equals_the_cropped_file(tmp_path):
    from core.cli import main
    from core.synth import demo_electrode

    e = demo_electrode("cycled-1C", rng=3, shape=(40, 48, 48))
    save_tiff(tmp_path / "whole.tif", e.greyscale, e.spacing)
    box = (slice(4, 36), slice(6, 46), slice(0, 40))
    save_tiff(tmp_path / "part.tif", np.ascontiguousarray(e.greyscale[box]), e.spacing)
    assert main(["analyze", str(tmp_path / "whole.tif"), "--out", str(tmp_path / "a"), "--crop", "4", "36", "6",
                 "46", "0", "40", "--quiet", "--recipe", str(tmp_path / "r.json")]) == 0
    assert main(["analyze", str(tmp_path / "part.tif"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = pd.read_csv(tmp_path / "a" / "particles.csv"), pd.read_csv(tmp_path / "b" / "particles.csv")
    assert len(a) == len(b) > 5
    pd.testing.assert_frame_equal(a, b)
    recipe = json.loads((tmp_path / "r.json").read_text())
    assert recipe["analyses"][0]["input"]["crop"] == [[4, 36], [6, 46], [0, 40]]
    assert main(["analyze", str(tmp_path / "whole.tif"), "--out", str(tmp_path / "c"), "--crop", "4", "2", "0",
                 "10", "0", "10", "--quiet"]) != 0
