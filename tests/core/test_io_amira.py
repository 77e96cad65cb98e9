"""Avizo / Amira ``.am`` volumes (:mod:`core.io.amira`): files written here to the AmiraMesh layout (header,
``@1`` sections; ``HxByteRLE`` run lengths encoded by :func:`amira_files.rle_encode`, an encoder of the tests'
own),
read whole (:func:`core.io.load_volume`) and lazily (:func:`core.chunked.open_lazy`) to the voxels written."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from core.chunked import open_lazy, open_lazy_array
from core.io import InputFileError, detect_format, load_volume
from core.io.amira import RleVolume, read_amira_header, rle_decode

from amira_files import rle_encode
from reading_checks import read_both, refused

ZYX = (5, 6, 7)

MATERIALS = """    Materials {
        Exterior {
            Color 0 0 0
        }
        Pore {
            Color 0.2 0.2 0.8,
            Id 1
        }
        "CBD" {
            Id 2,
            Color 0.1 0.8 0.1
        }
        NMC {
            Color 0.8 0.1 0.1
        }
    }
"""


def _labels(shape=ZYX, seed=0) -> np.ndarray:
    """Labels 0-3 in blocks (long runs across planes) with speckle (literals)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    lab = ((z // 2 + y // 3 + x // 4) % 4).astype(np.uint8)
    speckle = rng.random(shape) < 0.1
    lab[speckle] = rng.integers(0, 4, int(speckle.sum()))
    return lab


def _write(path, items, *, first="# Avizo BINARY-LITTLE-ENDIAN 2.1", lattice=None, params=None, shape=ZYX):
    """An AmiraMesh file: ``items`` are (declaration, section bytes) in section order @1, @2..."""
    nz, ny, nx = shape
    lattice = lattice or f"define Lattice {nx} {ny} {nz}"
    if params is None:
        params = ("Parameters {\n" + MATERIALS + f'    Content "{nx}x{ny}x{nz} byte, uniform coordinates",\n'
                  f"    BoundingBox 10 {10 + 0.5 * (nx - 1)} 0 {0.5 * (ny - 1)} 0 {2.0 * (nz - 1)},\n"
                  '    CoordType "uniform"\n}\n')
    head = f"{first}\n\n\n{lattice}\n\n{params}\n" + "".join(d + "\n" for d, _ in items) + "\n# Data section follows\n"
    body = b"".join(f"@{k}\n".encode() + sec + b"\n" for k, (_, sec) in enumerate(items, 1))
    path.write_bytes(head.encode("latin-1") + body)
    return path


def _both(path, **kw):
    whole = read_both(path, **kw)
    assert whole.fmt == "amira"
    return whole


def test_rle_decoder_against_the_encoder_and_its_refusals():
    rng = np.random.default_rng(1)
    for data in (np.zeros(1000, np.uint8), rng.integers(0, 256, 997).astype(np.uint8),
                 np.repeat(rng.integers(0, 3, 60), rng.integers(1, 300, 60)).astype(np.uint8)):
        np.testing.assert_array_equal(rle_decode(rle_encode(data), data.size), data)
    enc = rle_encode(np.arange(10, dtype=np.uint8))  # one literal run of 10
    assert enc[0] == 0x80 | 10
    with pytest.raises(ValueError, match="decode to 10 bytes, not 11"):
        rle_decode(enc, 11)
    with pytest.raises(ValueError, match="cut short"):
        rle_decode(enc[:-1], 10)
    # runs of length 0 decode to nothing, a repeat of 0 as the last byte included
    np.testing.assert_array_equal(rle_decode(b"\x80\x00\x07" + enc + b"\x00", 10), np.arange(10))


def test_label_field_with_materials_read_whole_and_plane_by_plane(tmp_path):
    lab = _labels()
    path = _write(tmp_path / "seg.am", [("Lattice { byte Labels } @1(HxByteRLE,%d)" % len(rle_encode(lab)),
                                         rle_encode(lab))])
    assert detect_format(path) == "amira"
    v = _both(path)
    np.testing.assert_array_equal(v.data, lab)
    assert v.spacing == (2.0, 0.5, 0.5) and v.spacing_from_metadata  # (max - min) / (n - 1) of the BoundingBox
    assert v.metadata["materials"] == {0: "Exterior", 1: "Pore", 2: "CBD", 3: "NMC"}  # Id where given, else place
    assert v.metadata["spacing_unit"].startswith("µm") and "no unit" in v.metadata["spacing_unit"]
    assert v.metadata["dataset"] == "Labels" and v.metadata["amira_encoding"] == "HxByteRLE"
    # boxes of a lazy read decode only their planes, runs crossing the planes' starts included
    rle = RleVolume(path, read_amira_header(path).offset, read_amira_header(path).nbytes, ZYX, "seg.am")
    for z0, z1 in ((0, 1), (1, 4), (4, 5), (0, 5), (3, 3)):
        np.testing.assert_array_equal(rle.planes(z0, z1), lab[z0:z1])
    np.testing.assert_array_equal(rle[2, 1:4, ::2], lab[2, 1:4, ::2])
    np.testing.assert_array_equal(rle[-1], lab[-1])
    np.testing.assert_array_equal(rle[4:0:-2, :, 3], lab[4:0:-2, :, 3])
    arr, _ = open_lazy_array(path)
    np.testing.assert_array_equal(np.asarray(arr[1:3, 2:5, 1:6]), lab[1:3, 2:5, 1:6])
    # the lazy source pickles without its voxels (a cluster's workers read the file themselves)
    import pickle

    assert len(pickle.dumps(open_lazy(path).reader)) < lab.size + 2000


@pytest.mark.parametrize("first, order", [("# Avizo BINARY-LITTLE-ENDIAN 2.1", "<"),
                                          ("# AmiraMesh 3D BINARY 2.0", ">")])
def test_greyscale_raw_in_the_files_byte_order(tmp_path, first, order):
    grey = (np.arange(np.prod(ZYX)).reshape(ZYX) * 37 % 65000).astype(order + "u2")
    path = _write(tmp_path / "scan.am", [("Lattice { ushort Data } @1", grey.tobytes())], first=first)
    v = _both(path)
    np.testing.assert_array_equal(v.data, grey.astype(np.uint16))
    assert v.data.dtype == np.uint16 and v.data.dtype.isnative


def test_zip_ascii_units_and_a_chosen_item(tmp_path, monkeypatch):
    grey = np.linspace(-1, 1, np.prod(ZYX), dtype=np.float32).reshape(ZYX)
    lab = _labels()
    zipped = zlib.compress(grey.tobytes())
    units = ('Parameters {\n    Units {\n        Coordinates "nm"\n    }\n    Materials {\n        Pore { Id 0 }\n    }\n'
             '    BoundingBox 0 60 0 50 0 40,\n    CoordType "uniform"\n}\n')
    path = _write(tmp_path / "two.am", [("Lattice { float Data } @1(HxZip,%d)" % len(zipped), zipped),
                                        ("Lattice { byte Labels } @2(HxByteRLE,%d)" % len(rle_encode(lab)),
                                         rle_encode(lab))], params=units)
    v = _both(path)  # Labels where there is one
    np.testing.assert_array_equal(v.data, lab)
    assert v.spacing == pytest.approx((0.01, 0.01, 0.01)) and v.metadata["spacing_unit"].startswith("nm")
    # a unit written in UTF-8 (Avizo's "µm"), a material named in it
    micro = path.read_bytes().replace('"nm"'.encode(), '"µm"'.encode("utf-8")).replace(
        b"Parameters {", 'Parameters {\n    Materials {\n        Pore° { Id 0 }\n    }'.encode("utf-8"))
    (tmp_path / "micro.am").write_bytes(micro)
    m = _both(tmp_path / "micro.am")
    assert m.spacing == pytest.approx((10.0, 10.0, 10.0)) and m.metadata["materials"] == {0: "Pore°"}
    assert v.metadata["amira_items"] == ["Data", "Labels"]
    d = _both(path, dataset="Data")
    np.testing.assert_array_equal(d.data, grey)
    assert "materials" not in d.metadata  # the label item's names, not the scan's
    # a file longer than the header read: each section found from where the one before ends
    import core.io.amira as amira

    monkeypatch.setattr(amira, "MAX_HEADER_BYTES", path.read_bytes().index(b"@1\n") + 8)
    np.testing.assert_array_equal(_both(path).data, lab)
    np.testing.assert_array_equal(_both(path, dataset="Data").data, grey)
    monkeypatch.undo()
    from core.io import list_datasets

    assert list_datasets(path) == [("Labels", ZYX, "uint8"), ("Data", ZYX, "float32")]  # the default first
    with pytest.raises(InputFileError, match="two.am has no data item 'Probability'; it has Data, Labels"):
        load_volume(path, dataset="Probability")
    # ASCII (the older form, '= @1', Materials as { Id, Name } entries; 2D lattice)
    text = ("# AmiraMesh ASCII 1.0\ndefine Lattice 3 2\n\nParameters {\n\tCoordType \"uniform\",\n"
            "\tBoundingBox 0 1 0 1 0 0\n}\nMaterials {\n\t{ Id 0, Name \"Exterior\" }\n\t{ Id 4, Name \"Something\" }\n"
            "}\nLattice { byte Labels } = @1\nLattice { byte Probability } = @2\n\n@1\n0 0 4\n4 0 0\n\n"
            "@2\n255 130 180\n200 190 230\n")
    (tmp_path / "a.am").write_text(text)
    a = _both(tmp_path / "a.am")
    np.testing.assert_array_equal(a.data, [[[0, 0, 4], [4, 0, 0]]])
    assert a.metadata["materials"] == {0: "Exterior", 4: "Something"}  # a Materials block after the Parameters
    np.testing.assert_array_equal(_both(tmp_path / "a.am", dataset="Probability").data, [[[255, 130, 180],
                                                                                          [200, 190, 230]]])
    assert a.spacing == (0.5, 1.0, 0.5)  # the z of one voxel takes the first axis's size


def _refused(tmp_path, text_or_bytes, name="bad.am"):
    p = tmp_path / name
    p.write_bytes(text_or_bytes if isinstance(text_or_bytes, bytes) else text_or_bytes.encode())
    return refused(p)


@pytest.mark.parametrize("first, order", [("# Avizo BINARY-LITTLE-ENDIAN 2.1", "<"), ("# AmiraMesh BINARY 2.0", ">")])
def test_zip_compressed_voxels_read_plane_by_plane_from_checkpoints(tmp_path, monkeypatch, first, order):
    """HxZip decoded plane by plane (:class:`ZipVolume`): with checkpoints every ~3 planes, every box of planes
    equals the whole decompression; the object pickles without its checkpoints; a cut or garbled stream is refused
    in one sentence on the first read."""
    import pickle

    import core.io.amira as amira

    shape = (23, 16, 12)
    grey = (np.random.default_rng(2).random(shape) * 4000).astype(np.uint16)
    grey[5:15] = 7  # long runs: output far beyond the input within a block
    zipped = zlib.compress(grey.astype(order + "u2").tobytes(), 6)
    path = _write(tmp_path / "z.am", [("Lattice { ushort Data } @1(HxZip,%d)" % len(zipped), zipped)], first=first,
                  shape=shape)
    monkeypatch.setattr(amira, "ZIP_CHECKPOINT_BYTES", 3 * 16 * 12 * 2 + 5)  # a checkpoint about every 3 planes
    monkeypatch.setattr(amira, "_ZIP_BLOCK", 97)  # fed in small blocks: many clean states to choose from
    amira._ZIP_INDEX.clear()
    layout = amira.read_amira_header(path)
    vol = amira.layout_voxels(layout, mmap=True)
    assert isinstance(vol, amira.ZipVolume) and vol.dtype == np.dtype("uint16") and vol.dtype.isnative
    np.testing.assert_array_equal(np.asarray(vol), grey)
    [points] = amira._ZIP_INDEX.values()
    assert len(points) >= 5 and all(b[2] - a[2] >= amira.ZIP_CHECKPOINT_BYTES for a, b in zip(points, points[1:]))
    for z0, z1 in [(0, 1), (4, 5), (6, 17), (22, 23), (0, 23), (9, 9)]:
        np.testing.assert_array_equal(vol.planes(z0, z1), grey[z0:z1])
    np.testing.assert_array_equal(vol[3:20:4, 2:9, ::-1], grey[3:20:4, 2:9, ::-1])
    np.testing.assert_array_equal(vol[-1], grey[-1])
    blob = pickle.dumps(vol)
    assert len(blob) < 1000 and b"Decompress" not in blob
    np.testing.assert_array_equal(pickle.loads(blob)[10:12], grey[10:12])
    np.testing.assert_array_equal(read_both(path).data, grey)  # whole (one zlib call) and lazily (planes)
    # broken streams: refused on the first read, in one sentence naming the file
    for bad, msg in ((zipped[:len(zipped) // 2], "hold "), (zipped[:40] + bytes(len(zipped) - 40), "cannot be decompressed")):
        amira._ZIP_INDEX.clear()
        b = _write(tmp_path / "bad.am", [("Lattice { ushort Data } @1(HxZip,%d)" % len(bad), bad)], first=first,
                   shape=shape)
        broken = amira.layout_voxels(amira.read_amira_header(b), mmap=True)
        with pytest.raises(InputFileError, match=rf"^bad\.am: its zip-compressed voxels {msg}"):
            broken.planes(20, 21)


def test_what_is_not_a_volume_or_is_broken_is_refused_in_one_sentence(tmp_path):
    lab = _labels()
    enc = rle_encode(lab)
    assert "not an Avizo / Amira file" in _refused(tmp_path, "hello\n")
    assert "surface" in _refused(tmp_path, "# HyperSurface 0.1 BINARY\n\nVertices 3\n")
    assert "holds no volume" in _refused(tmp_path, "# AmiraMesh 3D BINARY 2.0\ndefine Nodes 4\n"
                                         "Nodes { float[3] Coordinates } @1\n\n@1\n" + "x" * 48)
    good = _write(tmp_path / "g.am", [("Lattice { byte Labels } @1(HxByteRLE,%d)" % len(enc), enc)]).read_bytes()
    assert "vector field" in _refused(tmp_path, good.replace(b"{ byte Labels }", b"{ byte[3] Labels }"))
    assert "type 'complex'" in _refused(tmp_path, good.replace(b"{ byte Labels }", b"{ complex Labels }"))
    assert "'HxJpeg'" in _refused(tmp_path, good.replace(b"HxByteRLE", b"HxJpeg"))
    assert "rectilinear coordinates" in _refused(tmp_path, good.replace(b'"uniform"', b'"rectilinear"'))
    assert "truncated" in _refused(tmp_path, good[:-100])
    # run lengths that decode to fewer voxels than the lattice (the header's length adjusted to the bytes)
    short = enc[:-2]
    assert "corrupt" in _refused(tmp_path, good.replace(b"HxByteRLE,%d" % len(enc), b"HxByteRLE,%d" % len(short))
                                 .replace(enc, short))
    zipped = zlib.compress(b"\0" * 10)
    assert "hold 10 bytes, not the 210" in _refused(tmp_path, good.replace(
        b"{ byte Labels } @1(HxByteRLE,%d)" % len(enc), b"{ byte Labels } @1(HxZip,%d)" % len(zipped))
        .replace(enc, zipped))
    assert "missing" in _refused(tmp_path, good.replace(b"\n@1\n", b"\n@9\n"))
    assert "unit not understood" in _refused(tmp_path, good.replace(b'    CoordType "uniform"',
                                                                    b'    Units { Coordinates "parsec" }\n'
                                                                    b'    CoordType "uniform"'))


def test_material_names_propose_the_phases_and_inspect_prints_them(tmp_path, capsys):
    from core.codes import CBD, NMC, PORE
    from core.io.phase_map import phase_of_name, propose_phase_map

    assert phase_of_name("NMC particles") == NMC and phase_of_name("Carbon binder domain") == CBD
    assert phase_of_name("Exterior") == PORE and phase_of_name("pores") == PORE and phase_of_name("AM") == NMC
    assert phase_of_name("Inside") is None and phase_of_name("carbon particle") is None  # none, or two phases
    assert phase_of_name("Al current collector") == PORE  # not the electrode: no material
    data = np.array([[[0, 1, 2, 3]]], np.uint8)
    # by the value order alone: 0 pore, 1-2 CBD, 3 NMC; the names move what they say, the rest keep the order
    assert propose_phase_map(data)[2] == {0: PORE, 1: CBD, 2: CBD, 3: NMC}
    named = propose_phase_map(data, names={1: "NMC", 3: "Binder", 2: "Inside", 9: "Pore"})[2]
    assert named == {0: PORE, 1: NMC, 2: CBD, 3: CBD}
    # QA: Avizo's CamelCase names ("CarbonBinder") said nothing, and value 2 was proposed NMC by its order beside a
    # value named NMC: no CBD at all, unsaid
    assert (phase_of_name("CarbonBinder"), phase_of_name("ActiveMaterial"), phase_of_name("NMCParticles"),
            phase_of_name("PoreSpace"), phase_of_name("NMC811")) == (CBD, NMC, NMC, PORE, NMC)
    three = np.array([[[0, 1, 2]]], np.uint8)
    assert propose_phase_map(three, names={0: "Pores", 1: "NMC", 2: "CarbonBinder"})[2] == {0: PORE, 1: NMC, 2: CBD}
    # a value whose name says nothing takes the phase the names leave out
    assert propose_phase_map(three, names={0: "Pores", 1: "NMC", 2: "Material3"})[2] == {0: PORE, 1: NMC, 2: CBD}

    from amira_files import write_label_field

    lab = np.where(_labels() == 3, 0, _labels())  # 0 / 1 / 2
    path = write_label_field(tmp_path / "cal.am", lab, {0: "Pore", 1: "NMC", 2: "Carbon binder"}, 0.398)
    from core.cli import main

    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "amira, 5×6×7 voxels" in out and "read as µm (the file states no unit)" in out
    assert "named in the file 0 'Pore', 1 'NMC', 2 'Carbon binder'" in out and "propose 0=pore,1=nmc,2=cbd" in out


def test_a_label_field_is_not_thresholded_as_grey_values(tmp_path, capsys):
    """Without a phase map an Avizo label field is refused in one sentence (whole-volume and chunked engines, before
    anything is written); its greyscale item, or the labels with a map, are analysed."""
    from amira_files import write_label_field

    from core.cli import main
    from core.inputs import FileInput, open_input

    lab = np.zeros((12, 24, 24), np.uint8)
    lab[:, 4:20, 4:20] = 2
    lab[:, 10:14, :] = 1
    path = write_label_field(tmp_path / "seg.am", lab, {0: "Pore", 1: "Binder", 2: "NMC"}, 0.5)
    with pytest.raises(InputFileError, match=r"seg\.am is a label field \(materials 0 'Pore', 1 'Binder', 2 'NMC'\), "
                                             r"not a greyscale scan"):
        open_input(FileInput(path))
    assert open_input(FileInput(path, phase_map="0=pore,1=cbd,2=nmc")).presegmented
    for extra in ([], ["--chunk-size", "16"]):
        out = tmp_path / f"out{len(extra)}"
        assert main(["analyze", str(path), "--out", str(out), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "seg.am is a label field" in err and err.count("\n") == 1 and not out.exists()
    # an item of another name, without materials, is a volume like any other
    grey = (lab.astype(np.float32) * 100).tobytes()
    two = _write(tmp_path / "two.am", [("Lattice { float Data } @1", grey)], shape=lab.shape,
                 params='Parameters {\n    BoundingBox 0 1 0 1 0 1,\n    CoordType "uniform"\n}\n')
    assert open_input(FileInput(two)).volume.shape == lab.shape


def test_inspect_says_a_label_field_of_many_labels_is_one(tmp_path, capsys):
    from amira_files import write_label_field

    from core.cli import main

    many = (np.arange(6 * 20 * 24).reshape(6, 20, 24) // 300).astype(np.uint8)  # 12 labels: not a phase map's few
    path = write_label_field(tmp_path / "objects.am", many, {0: "Exterior", 1: "Particle 1"}, 0.5)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "LABEL FIELD: objects.am is a label field (materials 0 'Exterior', 1 'Particle 1'), not a greyscale" in out
    assert "looks already segmented" not in out and "FILL" not in out
