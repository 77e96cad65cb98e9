"""Test helpers: DICOM files as CT software exports them (written with pydicom)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_dicom(path: Path, pixels: np.ndarray, *, pixel_mm=(0.0005, 0.0004), thickness_mm: float | None = 0.0006,
                between_mm: float | None = None, position_mm: float | None = None, instance: int | None = None,
                syntax=None, shared: bool = False, colour: bool = False, rescale: tuple | None = None) -> None:
    """One DICOM file of ``pixels`` ((Y, X) a slice, (F, Y, X) a multi-frame file; uint8 / uint16 / int16).

    ``pixel_mm``: PixelSpacing (y, x); ``thickness_mm`` / ``between_mm``: SliceThickness / SpacingBetweenSlices;
    ``position_mm``: the z of ImagePositionPatient (axial orientation); ``instance``: InstanceNumber; ``syntax``: the
    transfer syntax UID (default explicit VR little endian); ``shared``: the spacing in the shared functional groups
    (an enhanced multi-frame file) instead of the top level; ``colour``: an RGB image of the pixels; ``rescale``:
    (RescaleSlope, RescaleIntercept).
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    measures = Dataset()
    measures.PixelSpacing = list(pixel_mm)
    if thickness_mm is not None:
        measures.SliceThickness = thickness_mm
    if between_mm is not None:
        measures.SpacingBetweenSlices = between_mm
    if shared:
        group = Dataset()
        group.PixelMeasuresSequence = Sequence([measures])
        ds.SharedFunctionalGroupsSequence = Sequence([group])
    else:
        for key in measures.keys():
            ds[key] = measures[key]
    if position_mm is not None:
        ds.ImagePositionPatient = [0.0, 0.0, position_mm]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if instance is not None:
        ds.InstanceNumber = instance
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    data = np.repeat(pixels[..., None], 3, axis=-1) if colour else pixels
    raw = np.ascontiguousarray(data).tobytes()
    if meta.TransferSyntaxUID.is_compressed:  # bytes that are not a codestream: the reader refuses before decoding
        from pydicom.encaps import encapsulate

        raw = encapsulate([raw])
    ds.PixelData = raw
    ds.save_as(path, enforce_file_format=True)
