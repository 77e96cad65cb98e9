"""Two-sample statistics: Holm correction, Cliff's delta, Wilson interval, bootstrap CIs of medians."""

from __future__ import annotations

import zlib

import numpy as np
from scipy import stats

from ._common import Rng, _check_confidence, _check_n_boot


#: Thresholds of |Cliff's delta| for negligible / small / medium / large (Romano et al. 2006).
CLIFF_THRESHOLDS: tuple[float, float, float] = (0.147, 0.33, 0.474)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, family-wise error rate).

    Parameters
    ----------
    pvalues : (M,) float in [0, 1]
        NaN entries are left NaN and not counted in the family.

    Returns
    -------
    adjusted : (M,) float64
        ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in sorted order, returned in
        the input order.  Reject at level ``alpha`` where ``adjusted <= alpha``.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    if np.any(p[np.isfinite(p)] < 0) or np.any(p[np.isfinite(p)] > 1) or np.any(np.isinf(p)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


def _two_samples(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both samples need at least one finite value, got {a.size} and {b.size}")
    return a, b


def cliffs_delta(a, b) -> float:
    """Cliff's delta: ``P(A > B) - P(A < B)`` over all pairs, in [-1, 1].

    Computed from the Mann–Whitney U of ``a`` (ties count one half), as
    ``2 U / (n_a n_b) - 1``; positive when ``a`` tends to be larger.
    NaN values are ignored.
    """
    a, b = _two_samples(a, b)
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    return float(2.0 * u / (a.size * b.size) - 1.0)


def effect_size_label(delta: float) -> str:
    """"negligible", "small", "medium" or "large" for |Cliff's delta| (Romano et al. 2006)."""
    d = abs(float(delta))
    if not np.isfinite(d):
        return "unknown"
    t1, t2, t3 = CLIFF_THRESHOLDS
    return "negligible" if d < t1 else "small" if d < t2 else "medium" if d < t3 else "large"


def p_text(p: float, alpha: float = 0.05) -> str:
    """A p-value in two significant digits ("0.34", "0.0012", "2.5e-06"), with more where two would round it onto
    ``alpha`` and hide on which side it lies ("0.0502" beside a 'no clear' reading, not "0.050"); "nan" when not
    finite.

    >>> p_text(0.05023), p_text(0.0496), p_text(0.05), p_text(0.342), p_text(2.5e-6)
    ('0.0502', '0.0496', '0.050', '0.34', '2.5e-06')
    """
    p = float(p)
    if not np.isfinite(p):
        return "nan"
    digits = 2
    text = f"{p:#.{digits}g}".rstrip(".")
    while p != alpha and float(text) == alpha and digits < 6:
        digits += 1
        text = f"{p:#.{digits}g}".rstrip(".")
    return text


def wilson_ci(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Returns
    -------
    (lo, hi) : float
        (NaN, NaN) when ``n == 0``.
    """
    c = _check_confidence(confidence)
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (np.nan, np.nan)
    z = stats.norm.ppf(0.5 + c / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exact ends at k = 0 and k = n (rounding left 1e-17 there), and the interval always holds p
    lo = 0.0 if k == 0 else min(p, max(0.0, centre - half))
    hi = 1.0 if k == n else max(p, min(1.0, centre + half))
    return (lo, hi)


def base_seed(rng: Rng) -> int:
    """The one integer every sample's resampling stream starts from (:func:`sample_rng`).

    Parameters
    ----------
    rng : int seed, numpy Generator or None
        A non-negative seed is used as it is; a Generator gives one draw (so a caller's generator still steers the
        result); None draws fresh entropy (not reproducible).
    """
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"a seed must be >= 0, got {rng}")
        return int(rng)
    return int(np.random.default_rng(rng).integers(2**63))


def _data_key(values: np.ndarray) -> tuple[int, int]:
    v = np.ascontiguousarray(values, dtype=np.float64)
    return zlib.crc32(v.tobytes()), int(v.size)


def sample_rng(base: int, values: np.ndarray, copy: int = 0) -> np.random.Generator:
    """A generator set by ``base`` and the sample's own values (float64 bytes, in order).

    Each electrode (or bin) resamples from its own stream, so its bootstrap interval depends on its particles and the
    seed only: not on which other electrodes are compared, nor on their order (QA walk 13: one generator shared in
    turn gave two electrodes with identical tables the intervals 0.340–0.396 and 0.340–0.400).

    ``copy`` > 0 gives another stream for the same values: for the second (third...) of samples with identical values
    resampled side by side for a difference, which one stream for both would read as exactly 0 (QA walk 14: two
    copies of one scan showed a median difference of 0 with the interval 0 to 0).
    """
    key = list(_data_key(values)) + ([int(copy)] if copy else [])
    return np.random.default_rng(np.random.SeedSequence([int(base), *key]))


def copy_numbers(samples) -> list[int]:
    """For samples resampled side by side: 0 for each the first time its values occur, 1, 2... for later copies of
    the same values (the ``copy`` of :func:`sample_rng`)."""
    seen: dict[tuple[int, int], int] = {}
    out = []
    for v in samples:
        k = _data_key(v)
        out.append(seen.get(k, 0))
        seen[k] = seen.get(k, 0) + 1
    return out


def _boot_medians(x: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 2_000_000) -> np.ndarray:
    """Medians of ``n_boot`` resamples (with replacement) of ``x``, drawn in memory-bounded chunks."""
    n = x.size
    out = np.empty(n_boot)
    step = max(1, chunk // n)
    for s in np.arange(0, n_boot, step):
        m = min(step, n_boot - s)
        out[s : s + m] = np.median(x[rng.integers(0, n, size=(m, n))], axis=1)
    return out


def _percentile_ci(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_median_ci(x, *, n_boot: int = 2000, rng: Rng = None,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the median.

    Parameters
    ----------
    x : (N,) float
        NaN values are ignored; at least 2 finite values.
    n_boot : int
        Resamples.
    rng : numpy Generator or int seed
        The resamples are drawn from the stream :func:`sample_rng` gives this seed and these values (a Generator
        gives one draw for the seed).
    confidence : float

    Returns
    -------
    (lo, hi) : float
    """
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 finite values, got {x.size}")
    boot = _boot_medians(x, _check_n_boot(n_boot), sample_rng(base_seed(rng), x))
    return _percentile_ci(boot, _check_confidence(confidence))


def bootstrap_median_diff_ci(a, b, *, n_boot: int = 2000, rng: Rng = None,
                             confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``median(a) - median(b)``.

    ``a`` and ``b`` are resampled independently (``n_boot`` times each), each from its own stream
    (:func:`sample_rng`: the resamples :func:`bootstrap_median_ci` draws of it with the same seed).
    NaN values are ignored; each sample needs at least 2 finite values.

    Returns
    -------
    (lo, hi) : float
    """
    a, b = _two_samples(a, b)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 finite values per sample, got {a.size} and {b.size}")
    n_boot = _check_n_boot(n_boot)
    base = base_seed(rng)
    ca, cb = copy_numbers([a, b])
    boot = _boot_medians(a, n_boot, sample_rng(base, a, ca)) - _boot_medians(b, n_boot, sample_rng(base, b, cb))
    return _percentile_ci(boot, _check_confidence(confidence))
