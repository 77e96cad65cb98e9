"""Checks shared by the format tests of tests/core (test_rawheader, test_io_amira, test_io_edf)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.chunked import open_lazy
from core.io import InputFileError, load_volume


def read_both(path, **kw):
    """The volume read whole and read lazily (computed): they must agree."""
    whole = load_volume(path, **kw)
    lazy = open_lazy(path, **kw)
    np.testing.assert_array_equal(np.asarray(lazy.data), whole.data)
    assert lazy.spacing == whole.spacing and lazy.fmt == whole.fmt
    return whole


def refused(path: Path) -> str:
    """The sentence ``load_volume(path)`` refuses the file with: one line, naming the file, no server path."""
    with pytest.raises(InputFileError) as info:
        load_volume(path)
    msg = str(info.value)
    assert path.name in msg and "\n" not in msg and str(path.parent) not in msg
    return msg
