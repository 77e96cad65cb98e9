"""2D images in PNG, BMP or JPEG (read with Pillow): an SEM or FIB-SEM cross-section, or one slice of a slice folder.

A single image is read as a volume of depth 1, ``(1, Y, X)``; its pixel size is not read (a PNG's or BMP's
resolution is a printing density, not a length in the sample), so the caller gives it.  Greyscale modes are read as
they are stored (8 or 16 bit, a palette image as its palette indices: the labels of a segmented image); an RGB image
whose three channels are equal (a greyscale micrograph saved in colour, as SEM software often does) is read as that
grey, with an alpha channel where it is opaque everywhere.  A JPEG is read too (SEM software often saves one), with
``lossy`` in its metadata: its compression moves grey values near edges, so the add form says so.  Refused in one
sentence naming the file: an image Pillow cannot read, colour channels that differ, transparent pixels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import InputFileError, Loaded, ReadOptions, _check_numeric, _name, _read_dtype, _short
from ._registry import register

__all__ = ["IMAGE_FORMATS", "LOSSY", "image_header", "image_notes", "read_image", "read_image_pixels"]

#: Suffix -> the format's name, for the images read here.
IMAGE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG"}
#: Suffixes of lossy formats (read, with ``lossy`` in the metadata).
LOSSY = (".jpg", ".jpeg")


#: Grey levels by which the colour channels of a JPEG may differ and still be read as one grey (their rounded
#: mean): the chroma a JPEG encoder leaves in a grey image.
JPEG_CHANNEL_TOLERANCE = 3


def _grey(arr: np.ndarray, mode: str, where: str, tolerance: int = 0) -> np.ndarray:
    """The one grey channel of a colour image whose channels are equal, or within ``tolerance`` grey levels (their
    rounded mean), alpha opaque; else a refusal."""
    colour = {"RGB": 3, "RGBA": 3, "LA": 1}.get(mode)
    if colour is not None:
        grey = arr[..., 0]
        same = all(np.array_equal(arr[..., c], grey) for c in range(1, colour))
        if not same and tolerance and colour == 3:
            rgb = arr[..., :3].astype(np.int32)
            if int((rgb.max(-1) - rgb.min(-1)).max()) <= tolerance:
                grey, same = np.rint(rgb.mean(-1)).astype(arr.dtype), True
        opaque = mode == "RGB" or bool((arr[..., -1] == np.iinfo(arr.dtype).max).all())
        if same and opaque:
            return grey
        if same:
            raise InputFileError(f"{where} has transparent pixels ({mode}); save it without transparency")
    raise InputFileError(f"{where} has {arr.shape[-1]} channels ({mode}); convert it to greyscale first")


def read_image_pixels(path: Path, where: str) -> np.ndarray:
    """The (Y, X) pixels of a PNG or BMP file; ``where``: how messages name it."""
    from PIL import Image, UnidentifiedImageError

    kind = IMAGE_FORMATS.get(path.suffix.lower(), "an image")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
            if len(im.getbands()) > 1 and im.mode != "P":
                arr = _grey(arr, im.mode, where, JPEG_CHANNEL_TOLERANCE if path.suffix.lower() in LOSSY else 0)
    except InputFileError:
        raise
    except MemoryError as exc:
        raise MemoryError(f"not enough memory to read {where}: {_short(exc, path=path)}") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError,
            EOFError) as exc:
        raise InputFileError(f"could not read {where} as {kind}: {_short(exc, path=path)}") from None
    return _check_numeric(arr, where)


def image_header(path: Path) -> tuple[tuple[int, int], str]:
    """((Y, X), dtype name) of a PNG or BMP file as :func:`read_image_pixels` reads it, from its header and one
    pixel (a colour image is read as its grey channel)."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.crop((0, 0, 1, 1)))
        return (im.size[1], im.size[0]), _read_dtype(arr.dtype)


@register("image", target="file")
def read_image(path: Path, opts: ReadOptions) -> Loaded:
    """A PNG or BMP image (the module docstring) as a volume of depth 1; it states no pixel size."""
    img = read_image_pixels(path, _name(path))
    if img.ndim != 2:
        raise InputFileError(f"{_name(path)} is not a 2D image: shape {img.shape}")
    return Loaded(img[None], None, image_notes(path), os.fspath(path))


def image_notes(path: Path) -> dict:
    """The metadata notes of an image: ``lossy`` for a JPEG."""
    return {"lossy": "JPEG"} if path.suffix.lower() in LOSSY else {}
