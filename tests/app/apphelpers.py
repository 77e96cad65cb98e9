"""Shared constants and helpers of the dashboard tests (importable: conftest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
DEMO_SIZE = 48  # voxels per edge: each demo generates and analyses in well under a second
TIMEOUT = 120


def page(name: str) -> str:
    return str(ROOT / "pages" / name)


def no_exception(at) -> None:
    assert not at.exception, "\n".join(e.message + "\n" + "\n".join(e.stack_trace or []) for e in at.exception)


def chart_specs(at) -> list[dict]:
    import json

    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_data(at, index: int = 0) -> dict:
    """The named datasets of the ``index``-th Altair chart, as DataFrames (Streamlit sends them as Arrow)."""
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[index].proto
    return {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in proto.datasets}


def layer_data(at, mark: str, index: int = 0):
    """DataFrame of the first layer with this mark type in the ``index``-th chart."""
    import json

    spec = json.loads(at.get("vega_lite_chart")[index].proto.spec)
    data = chart_data(at, index)
    for layer in spec.get("layer", [spec]):
        m = layer.get("mark")
        if (m.get("type") if isinstance(m, dict) else m) == mark:
            return data[layer["data"]["name"]]
    raise AssertionError(f"no {mark} layer in chart {index}")
