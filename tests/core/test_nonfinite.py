"""Non-finite voxels: over 0.1 % refused with the share; fewer filled, warned, recorded; the model never sees NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from core.phases import NONFINITE_MAX_SHARE, check_greyscale, check_greyscale_nonfinite, nonfinite_fill, segment
from core.pipeline import AnalysisParams, run
from core.synth import demo_electrode


@pytest.fixture(scope="module")
def elec():
    return demo_electrode("cycled-1C", rng=3, shape=(48, 48, 48))


def _float(e) -> np.ndarray:
    return e.greyscale.astype(np.float32)


def _filled(vol: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(vol), vol, np.float32(nonfinite_fill(vol)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_more_than_a_tenth_of_a_percent_is_refused_with_the_share(elec, bad):
    vol = _float(elec)
    vol[:24] = bad  # half the volume
    with pytest.raises(ValueError, match=r"^volume has 50\.0% non-finite voxels \(NaN or infinite; at most 0\.1% are "
                                         r"filled\): crop it to the region with data"):
        check_greyscale(vol)
    with pytest.raises(ValueError, match=r"50\.0% non-finite voxels"):
        run(vol, spacing=elec.spacing)
    with pytest.raises(ValueError, match=r"50\.0% non-finite voxels"):
        run(vol, AnalysisParams(method="model", particles="model"), spacing=elec.spacing)


def test_the_limit_is_inclusive(elec):
    vol = _float(elec).ravel()
    n = int(NONFINITE_MAX_SHARE * vol.size)
    vol[np.linspace(0, vol.size - 1, n).astype(int)] = np.nan
    vol = vol.reshape(elec.greyscale.shape)
    assert check_greyscale(vol) is vol and check_greyscale_nonfinite(vol) == n
    vol.ravel()[1] = np.nan
    with pytest.raises(ValueError, match="non-finite voxels"):
        check_greyscale(vol)


def test_fill_value_is_the_median_of_the_finite_values(elec):
    vol = _float(elec)
    assert nonfinite_fill(vol) == float(np.median(vol.astype(np.float64)))
    assert nonfinite_fill(elec.greyscale) is None and check_greyscale_nonfinite(elec.greyscale) == 0


@pytest.mark.parametrize("method", ["threshold", "model"])
def test_a_few_nan_voxels_are_filled_warned_and_recorded(elec, method):
    vol = _float(elec)
    vol[10, 20, 30] = np.nan
    vol[40, 5, 7] = np.inf
    before = vol.copy()
    params = AnalysisParams(method=method, particles="model" if method == "model" else "watershed")
    with pytest.warns(UserWarning, match=r"^2 of 110592 voxels \(0\.0018 %\) are not finite \(NaN or infinite\); they "
                                         r"were given the median grey value of the finite voxels"):
        res = run(vol, params, spacing=elec.spacing)
    np.testing.assert_array_equal(vol, before)  # not modified
    assert res.provenance["nonfinite_filled"] == 2
    # the same phases as the volume filled beforehand, not all pore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = run(_filled(vol), params, spacing=elec.spacing)
    np.testing.assert_array_equal(res.phases, ref.phases)
    np.testing.assert_array_equal(res.labels, ref.labels)
    assert ref.provenance["nonfinite_filled"] == 0
    clean = run(_float(elec), params, spacing=elec.spacing)
    assert np.count_nonzero(res.phases != clean.phases) < 0.001 * vol.size
    assert abs(len(res.table) - len(clean.table)) <= 1


def test_model_never_sees_nan(elec, monkeypatch):
    from core.nn import tiling

    seen = []
    read = tiling._read_tile

    def spy(*a, **k):
        t = read(*a, **k)
        seen.append(bool(np.isfinite(t).all()))
        return t

    monkeypatch.setattr(tiling, "_read_tile", spy)
    vol = _float(elec)
    vol[0, 0, 0] = np.nan
    from core.nn.infer import segment_volume

    seg = segment_volume(vol, device="cpu")
    assert seen and all(seen)
    assert len(np.unique(seg.phases)) == 3


def test_threshold_segmentation_fills_with_the_same_value(elec):
    vol = _float(elec)
    vol[5, 5, 5] = np.nan
    np.testing.assert_array_equal(segment(vol), segment(_filled(vol)))


def test_integer_volume_has_no_nonfinite_warning(elec):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="The blur")
        res = run(elec.greyscale, spacing=elec.spacing)
    assert res.provenance["nonfinite_filled"] == 0
