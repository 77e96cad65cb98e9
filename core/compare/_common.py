"""Types, constants and argument checks shared by :mod:`core.compare`; which particles an edge policy keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd


EdgePolicy = Literal["exclude", "include", "miles"]
Weighting = Literal["number", "volume"]
Binning = Literal["quantile", "fixed"]

EDGE_POLICIES: tuple[str, ...] = ("exclude", "include", "miles")
WEIGHTINGS: tuple[str, ...] = ("number", "volume")
BINNINGS: tuple[str, ...] = ("quantile", "fixed")

#: Bounding-box columns of the particle table (µm), used for Miles–Lantuéjoul weights.
EXTENT_COLUMNS: tuple[str, str, str] = ("extent_z_um", "extent_y_um", "extent_x_um")

Rng = np.random.Generator | int | None


# --------------------------------------------------------------------------- validation


def _check_tables(tables, *, min_count: int = 1) -> dict[str, pd.DataFrame]:
    if not isinstance(tables, Mapping):
        raise TypeError(f"tables must be a mapping {{electrode name: particle table}}, got {type(tables).__name__}")
    for name, t in tables.items():
        if not isinstance(t, pd.DataFrame):
            raise TypeError(f"the table of electrode {name!r} must be a pandas DataFrame, got {type(t).__name__}")
    if len(tables) < min_count:
        what = "electrode" if min_count == 1 else "electrodes"
        raise ValueError(f"need at least {min_count} {what} to compare, got {len(tables)}")
    return dict(tables)


def _check_metric(tables: Mapping[str, pd.DataFrame], metric: str, what: str = "metric") -> None:
    for name, t in tables.items():
        if metric not in t.columns:
            numeric = [c for c in t.columns if t[c].dtype.kind in "fiub"]
            raise ValueError(f"unknown {what} column {metric!r} in the table of electrode {name!r}; "
                             f"choose one of {numeric}")
        if t[metric].dtype.kind not in "fiub":
            raise ValueError(f"{what} column {metric!r} of electrode {name!r} is not numeric "
                             f"(dtype {t[metric].dtype})")


def _check_policy(edge_policy: str) -> None:
    if edge_policy not in EDGE_POLICIES:
        raise ValueError(f"edge_policy must be one of {list(EDGE_POLICIES)}, got {edge_policy!r}")


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0 < c < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return c


def _check_n_boot(n_boot: int) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    return int(n_boot)


def _edge_mask(table: pd.DataFrame, name: str) -> np.ndarray:
    if "touches_edge" not in table.columns:
        raise ValueError(f"the table of electrode {name!r} has no 'touches_edge' column, needed to leave out "
                         "particles cut by the volume edge; use edge_policy='include'")
    return table["touches_edge"].to_numpy(bool)


def _selected(table: pd.DataFrame, name: str, edge_policy: str) -> np.ndarray:
    """Rows kept by the edge policy (bool, one per particle)."""
    if edge_policy == "include":
        return np.ones(len(table), bool)
    return ~_edge_mask(table, name)


def _policy_words(edge_policy: str) -> str:
    return "edge particles included" if edge_policy == "include" else "edge particles excluded"


def _finite_values(table: pd.DataFrame, name: str, metric: str, edge_policy: str, min_n: int) -> np.ndarray:
    """Finite ``metric`` values of the particles the policy keeps; at least ``min_n`` or ValueError."""
    v = table[metric].to_numpy(float)[_selected(table, name, edge_policy)]
    v = v[np.isfinite(v)]
    if v.size < min_n:
        if len(table) and v.size == 0 and not np.isfinite(table[metric].to_numpy(float)).any():
            raise ValueError(f"electrode {name!r} has no particle with a finite {metric} (all NaN); "
                             "nothing to compare")
        raise ValueError(f"electrode {name!r} has {v.size} particle{'s' if v.size != 1 else ''} with a finite "
                         f"{metric} ({_policy_words(edge_policy)}); at least {min_n} are needed")
    return v
