"""Statistics that compare electrodes: weights, distributions, tests, summaries and trends.

A package by concept, every public name re-exported here (``from core import
compare`` then ``compare.trend(...)``):

- :mod:`~core.compare.tables`: :func:`combine`, :func:`drop_small`;
- :mod:`~core.compare.weights`: edge policies, Miles–Lantuéjoul weights;
- :mod:`~core.compare.weighted`: weighted quantiles, ECDF, histogram, density, :func:`distributions`;
- :mod:`~core.compare.statistics`: Holm, Cliff's delta, Wilson interval, bootstrap CIs;
- :mod:`~core.compare.pairwise`: Mann–Whitney and KS tests between electrodes;
- :mod:`~core.compare.summaries`: :func:`summary`, one row per electrode;
- :mod:`~core.compare.trends`: :func:`trend`, binned medians;
- :mod:`~core.compare.electrode_trend`: :func:`electrode_trend`, electrodes on an axis (C-rate, cycles...):
  per-electrode medians against a sample attribute, tested with the electrode as the unit.

Input everywhere is a mapping ``{electrode name: particle table}`` (tables from
:func:`core.metrics.particle_table`, one row per particle); the order of the
mapping is the order of the output rows.  Nothing here imports streamlit.

Which particles count
---------------------
Particles cut by the volume edge (``touches_edge``) have truncated sizes and
only part of their surface is seen.  Every function takes an ``edge_policy``:

``"exclude"``
    edge particles are left out;
``"include"``
    every particle counts;
``"miles"``
    edge particles are left out and, in *weighted distributions*, each
    remaining particle gets the Miles–Lantuéjoul weight
    ``V_window / prod_i (L_i - d_i)`` (see :func:`miles_weights`), which undoes
    the bias against large particles (they touch the edge more often).
    Hypothesis tests, summaries and trends count particles, not weights: there
    ``"miles"`` selects the same particles as ``"exclude"``.

The policy used is recorded in every result.

Randomness (bootstrap) only comes through an ``rng`` argument (a
:class:`numpy.random.Generator` or an int seed): the same seed gives the same
numbers.
"""

from __future__ import annotations

from ._common import BINNINGS, EDGE_POLICIES, EXTENT_COLUMNS, WEIGHTINGS, Binning, EdgePolicy, Rng, Weighting
from .electrode_trend import (
    ALTERNATIVES, EXACT_MAX_ELECTRODES, MIN_ELECTRODES, X_SCALES, ElectrodeTrend, TrendTest, electrode_trend,
    slope_unit, suggested_scale, trend_file_table, trend_reading, trend_verdict,
)
from .pairwise import PairwiseTests, pairwise_tests, reading
from .statistics import (
    CLIFF_THRESHOLDS, bootstrap_median_ci, bootstrap_median_diff_ci, cliffs_delta, effect_size_label, holm, p_text,
    wilson_ci,
)
from .summaries import Summary, summary
from .tables import combine, drop_small
from .trends import Trend, trend
from .weighted import (
    QUANTILES, Distributions, distributions, weighted_density, weighted_ecdf, weighted_histogram, weighted_quantile,
)
from .weights import MILES_MIN_FREE_SHARE, ParticleWeights, disc_share, miles_weights, particle_weights

__all__ = [
    "ALTERNATIVES", "EXACT_MAX_ELECTRODES", "ElectrodeTrend", "MIN_ELECTRODES", "TrendTest", "X_SCALES",
    "electrode_trend", "slope_unit", "suggested_scale", "trend_file_table", "trend_reading",
    "trend_verdict",
    "BINNINGS", "CLIFF_THRESHOLDS", "EDGE_POLICIES", "EXTENT_COLUMNS", "MILES_MIN_FREE_SHARE", "QUANTILES",
    "WEIGHTINGS", "Binning", "Distributions", "EdgePolicy", "PairwiseTests", "ParticleWeights", "Rng", "Summary",
    "Trend", "Weighting", "bootstrap_median_ci", "bootstrap_median_diff_ci", "cliffs_delta", "combine",
    "disc_share", "distributions", "drop_small", "effect_size_label", "holm", "miles_weights", "pairwise_tests",
    "p_text", "particle_weights", "reading", "summary", "trend", "weighted_density", "weighted_ecdf",
    "weighted_histogram", "weighted_quantile", "wilson_ci",
]
