"""Reading and writing tomography volumes.

Every loader returns a :class:`Volume`: a numpy array with axes ``(z, y, x)``
plus the voxel ``spacing`` in micrometres (µm) per axis and where it came from.
A 2D image is returned with depth 1, shape ``(1, Y, X)``.

Supported inputs (see :func:`detect_format`):

``"tiff"``
    Multi-page TIFF, ImageJ hyperstack or OME-TIFF (``.tif``, ``.tiff``,
    ``.ome.tif``); an SEM's TIFF with the pixel size and data bar of its FEI / Thermo Fisher or Zeiss tag
    (:mod:`.sem`).
``"slices"``
    A folder of 2D ``.tif``/``.tiff``/``.png``/``.bmp``/``.edf`` slices, stacked in natural order
    (``slice2`` before ``slice10``); the voxel size from the slices, else from a Bruker SkyScan reconstruction log
    beside them (:func:`.folder.skyscan_pixel_size`).
``"hdf5"``
    ``.h5``, ``.hdf5``, ``.hdf``, ``.nxs``; one dataset is chosen with ``dataset``; the voxel size from its
    attributes, else a Data Exchange file's objective resolution (:func:`.hdf5.h5_spacing`).
``"zarr"``
    A zarr v2 or v3 store (``.zarr`` folder, or any folder holding
    ``zarr.json``/``.zarray``/``.zgroup``).
``"npy"``
    A NumPy ``.npy`` file (memory-mapped by default).
``"raw"``
    Headerless binary (``.raw``, ``.bin``, ``.vol``); needs ``shape`` and ``dtype``, unless a header beside it
    states them (ESRF ``X.vol.info``, MetaImage ``X.mhd``, VGStudio / Nikon ``X.vgi``: :mod:`.rawheader`).
``"metaimage"``
    MetaImage ``.mhd`` (header, with its data file beside it) or ``.mha`` (both in one file).
``"amira"``
    Avizo / Amira ``.am`` (AmiraMesh lattice: greyscale or a label field with its materials' names;
    :mod:`.amira`).
``"edf"``
    ESRF Data Format ``.edf`` (a slice, a volume, or 2D frames stacked; :mod:`.edf`).
``"image"``
    One 2D PNG, BMP or JPEG image (an SEM or FIB-SEM cross-section) as a volume of depth 1 (:mod:`.image`).
``"dicom"``
    DICOM ``.dcm``: one slice, or an enhanced multi-frame volume; a folder of ``.dcm`` slices is a ``"slices"``
    series, in the order of its slices in space (:mod:`.dicom`).  Files saved without the suffix (``IM0001``, or
    named by their UID) are told by their content (``DICM`` after the 128-byte preamble).
``"nifti"``
    NIfTI ``.nii`` / ``.nii.gz`` (ITK-SNAP, 3D Slicer, nnU-Net), (x, y, z) read as (z, y, x), read with nibabel
    (:mod:`.nifti`).
``"mrc"``
    MRC ``.mrc`` / ``.rec`` / ``.st`` (IMOD, TrakEM2, Amira, Dragonfly; ``.mrc.gz`` / ``.mrc.bz2``), the voxel size
    in Å, read with mrcfile (:mod:`.mrc`).
``"txm"``
    Zeiss Xradia reconstruction ``.txm`` (an OLE compound file; :mod:`.txm`).  Projection files (``.txrm``,
    ``.xrm``) are refused: they hold radiographs, not a volume.

Loaders never write to or modify their input, and refuse a bad one with one sentence naming the file by
its name (:class:`InputFileError`, a ``ValueError``): a path that is not a regular file or folder (a FIFO, a
device, a socket: refused from :func:`os.stat` before anything opens it), a truncated or corrupt file (a TIFF
stack or ``.npy`` holding fewer or more bytes than its header declares, a raw file whose size is not
``offset + shape x dtype``), data that is not 2D/3D greyscale numbers.  Errors of tifffile, h5py, zarr and
PIL on a broken file become that one sentence; tifffile's own log lines are not printed.  :func:`save_tiff` writes an
ImageJ-compatible TIFF atomically (temporary file + :func:`os.replace`).

Phase volumes that are already segmented are turned into the fixed codes
``0 = pore``, ``1 = CBD``, ``2 = NMC`` with :func:`load_phases`,
:func:`parse_phase_map` and :func:`apply_phase_map`.

Layout: :mod:`.load` (``load_volume``, ``detect_format``, ``list_datasets``) looks
the format up in the reader registry (:mod:`._registry`, ``READERS``); each
format module registers one reader returning a :class:`Loaded`: :mod:`.tiff`,
:mod:`.folder` (slices), :mod:`.hdf5`, :mod:`.zarr`, :mod:`.raw` (npy, raw and MetaImage; the headers
of :mod:`.rawheader`), :mod:`.amira` (Avizo / Amira), :mod:`.edf` (ESRF), :mod:`.txm` (Zeiss Xradia), :mod:`.dicom` (DICOM), :mod:`.image` (PNG, BMP, JPEG);
:mod:`.sem` reads an SEM image's pixel size and finds its data bar.
:mod:`.phase_map` maps segmented values to phase codes, :mod:`.save` writes TIFFs,
:mod:`.downsampling` block-averages on loading.
"""

from __future__ import annotations

from ._common import COMPRESSED_ENDINGS, FORMATS, InputFileError, Loaded, ReadOptions, Volume, _natural_key  # noqa: F401  (_natural_key: tests)
from ._registry import READERS, Reader, register
from .load import detect_format, list_datasets, load_volume
from .phase_map import _normalize_phase_map, apply_phase_map, load_phases, parse_phase_map  # noqa: F401
from .save import save_tiff

__all__ = [
    "COMPRESSED_ENDINGS", "FORMATS",
    "READERS",
    "InputFileError",
    "Loaded",
    "ReadOptions",
    "Reader",
    "Volume",
    "apply_phase_map",
    "detect_format",
    "list_datasets",
    "load_phases",
    "load_volume",
    "parse_phase_map",
    "register",
    "save_tiff",
]
