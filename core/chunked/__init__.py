"""The chunked, out-of-core, parallel engine (Dask): volumes far bigger than memory, on one machine or a cluster.

Volumes are :mod:`dask.array` arrays cut into chunks; every step reads a
chunk with a halo of its neighbours wide enough that the result equals the
whole-volume engine's, and the results are written chunk by chunk to Zarr.
Nothing volume-sized is held by the client or a worker.

Modules
-------
``inputs``   :func:`open_lazy`: every input :func:`core.io.load_volume` reads, as a lazily chunked
             :class:`LazyVolume` (same checks, same spacing); :func:`as_dask`
``lazy``     :class:`LazyArray`: a volume file read by numpy indexing one box at a time, never whole (the
             dashboard's view of a big sample); :func:`open_lazy_array`
``phases``   :func:`segment_chunked`: the phases, identical to :func:`core.phases.segment`; the halo rule
             (:func:`phase_halo`, :func:`island_halo`) and the memory budget are in its docstring;
             :func:`phases_from_map` for a volume already segmented
``particles`` :func:`separate_chunked`: particles per chunk with a halo, one global labelling across chunk
             faces (the halo rule, :func:`particle_halo`, :func:`estimate_max_diameter` of the largest
             particle, and what is not exact are in its docstring)
``measures`` :func:`measure_chunked`: the per-particle table of :func:`core.metrics.particle_table`, from
             reductions over chunks and per-particle crops (equal to the whole-volume table)
``store``    :func:`write_zarr`: a Zarr v3 OME-Zarr store written chunk by chunk
``analysis`` :func:`~core.chunked.analysis.analyze_chunked`: the whole analysis of a file on this engine
             (``python -m core analyze --chunk-size N``)
``cluster``  :func:`cluster`: a ``distributed`` local cluster (one single-threaded process per core) or
             an existing one by address

Example
-------
>>> from core.chunked import cluster, open_lazy, segment_chunked, write_zarr
>>> if __name__ == "__main__":                       # doctest: +SKIP
...     vol = open_lazy("scan.tif", chunks=128)
...     with cluster(workers=2):
...         seg = segment_chunked(vol)
...         write_zarr(seg.phases, "phases.zarr", spacing=vol.spacing, name="phases")
"""

from .cluster import cluster, default_workers
from .inputs import DEFAULT_CHUNK, LazyVolume, as_dask, open_lazy
from .lazy import LazyArray, flattened_array, is_lazy_array, open_lazy_array
from .measures import measure_chunked, separator_side_chunked
from .particles import ChunkedLabels, estimate_max_diameter, particle_halo, separate_chunked
from .phases import ChunkedSegmentation, island_halo, phase_halo, phases_from_map, segment_chunked
from .store import OME_ZARR_VERSION, ome_multiscales, write_zarr

__all__ = [
    "DEFAULT_CHUNK", "LazyVolume", "as_dask", "open_lazy",
    "LazyArray", "flattened_array", "is_lazy_array", "open_lazy_array",
    "ChunkedSegmentation", "island_halo", "phase_halo", "phases_from_map", "segment_chunked",
    "ChunkedLabels", "estimate_max_diameter", "particle_halo", "separate_chunked",
    "measure_chunked", "separator_side_chunked",
    "OME_ZARR_VERSION", "ome_multiscales", "write_zarr",
    "cluster", "default_workers",
]
