"""Contact graph of the particles and their electronic connection to the current collector.

A particle exchanges electrons with the current collector only through a
conductive path: other particles it touches, or the carbon-binder domain (CBD).
:func:`contact_graph` builds that graph from a particle label volume and a
phase volume and tells, per particle, whether such a path exists.

Graph
-----
nodes
    every particle (a label > 0), every connected CBD cluster (6-connected
    components of the CBD voxels that carry no particle label) and one node
    for the current collector.
edges
    * particle -- particle: the two share at least one voxel face;
    * particle -- CBD cluster: a particle voxel shares a face with a voxel of
      the cluster (so two particles glued by one cluster are linked through it);
    * particle -- collector and CBD cluster -- collector: a voxel of it lies on
      the current-collector face of the volume, the end of the thickness
      ``axis`` opposite to the separator.

A particle is *connected* when the graph holds a path from it to the collector
node and *isolated* otherwise.

Limits
------
* Voxels with the NMC phase but label 0 (if a separation left any) are not
  particles and conduct nothing here.
* Only the imaged window is seen: a particle cut by a side face of the volume
  (``touches_edge``) may be connected through material outside it, so its
  isolation is uncertain; the summary counts such particles apart.
* Contact is topological: one shared voxel face is a contact, whatever its area
  (the edge list gives the areas for a stricter reading).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

import cc3d
import numba
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from . import _kernels as K
from ._validate import check_choice, check_labels, check_phases, normalize_spacing
from .codes import CBD

CollectorEnd = Literal["start", "end"]

#: Columns of :attr:`ContactGraph.particles`, in order.
PARTICLE_COLUMNS: tuple[str, ...] = (
    "label",
    "n_voxels",
    "volume_um3",
    "depth_frac",
    "touches_collector",
    "touches_edge",
    "n_particle_contacts",
    "n_cbd_clusters",
    "cbd_cluster_id",
    "cbd_cluster_volume_um3",
    "connected",
)

#: Columns of :attr:`ContactGraph.by_depth`, in order.
DEPTH_COLUMNS: tuple[str, ...] = (
    "depth_lo", "depth_hi", "n_particles", "n_isolated", "share_isolated", "share_isolated_volume",
)

#: Columns of :attr:`ContactGraph.contacts`, in order.
CONTACT_COLUMNS: tuple[str, ...] = ("label_a", "label_b", "area_um2")


@dataclass(frozen=True)
class IsolationSummary:
    """Per-electrode numbers of a :class:`ContactGraph`.

    Attributes
    ----------
    n_particles : int
    n_isolated : int
        Particles with no path to the current collector.
    share_isolated : float
        ``n_isolated / n_particles`` (number-weighted); NaN without particles.
    share_isolated_volume : float
        Volume of the isolated particles / volume of all particles.
    n_isolated_at_edge : int
        Isolated particles cut by a side face of the volume: they may be
        connected outside the imaged window.
    n_touching_collector : int
        Particles with a voxel on the current-collector face.
    n_cbd_clusters : int
        6-connected CBD clusters.
    share_cbd_connected : float
        Share of the CBD volume in clusters connected to the collector
        (directly or through particles); NaN without CBD.
    """

    n_particles: int
    n_isolated: int
    share_isolated: float
    share_isolated_volume: float
    n_isolated_at_edge: int
    n_touching_collector: int
    n_cbd_clusters: int
    share_cbd_connected: float


@dataclass(frozen=True, eq=False)
class ContactGraph:
    """Result of :func:`contact_graph`.

    Attributes
    ----------
    particles : DataFrame
        One row per particle, columns :data:`PARTICLE_COLUMNS`:
        ``label``; ``n_voxels`` and ``volume_um3`` (solid voxels);
        ``depth_frac`` (solid centroid, 0 separator side .. 1 current
        collector, as in :func:`core.metrics.particle_table`);
        ``touches_collector``; ``touches_edge`` (a voxel on one of the five
        other faces of the volume); ``n_particle_contacts`` (distinct
        particles sharing a face); ``n_cbd_clusters`` (distinct CBD clusters
        touched); ``cbd_cluster_id`` and ``cbd_cluster_volume_um3`` of the
        largest (by volume) touched cluster, 0 and 0.0 when none (clusters
        are numbered 1.. in the (z, y, x) raster order of their first voxel;
        a tie in volume goes to the lower id);
        ``connected`` (bool, a path to the collector exists).
    contacts : DataFrame
        Particle pairs sharing faces, columns :data:`CONTACT_COLUMNS`
        (``label_a < label_b``, shared face area in µm²).
    by_depth : DataFrame
        Isolated share per depth bin, columns :data:`DEPTH_COLUMNS`; a
        particle belongs to the bin holding its ``depth_frac`` (the last bin
        includes 1); shares are NaN in an empty bin.
    summary : IsolationSummary
    axis : int
        Thickness axis.
    separator_side : {"start", "end"}
        The current collector is the other end of ``axis``.
    spacing : (3,) float, µm
    """

    particles: pd.DataFrame
    contacts: pd.DataFrame
    by_depth: pd.DataFrame
    summary: IsolationSummary
    axis: int
    separator_side: str
    spacing: tuple[float, float, float]

    def among(self, labels) -> ContactGraph:
        """The same graph counted over the particles ``labels`` only (those a size filter keeps).

        Who reaches the collector is unchanged (a path may run through a particle left out: it still conducts);
        :attr:`particles`, :attr:`contacts`, :attr:`by_depth` (as many bins) and the particle counts of
        :attr:`summary` are of the kept ones, the CBD's numbers as they were.

        Parameters
        ----------
        labels : (k,) int array-like
            Labels to keep; labels not in the graph are ignored.
        """
        keep = np.asarray(labels, np.int64).ravel()
        p = self.particles[self.particles["label"].isin(keep)].reset_index(drop=True)
        c = self.contacts
        c = c[c["label_a"].isin(keep) & c["label_b"].isin(keep)].reset_index(drop=True)
        summary = replace(self.summary, **_particle_counts(p))
        return replace(self, particles=p, contacts=c, by_depth=isolation_by_depth(p, len(self.by_depth)),
                       summary=summary)

    @property
    def isolated_labels(self) -> np.ndarray:
        """(n,) int64 labels of the isolated particles."""
        p = self.particles
        return p.loc[~p["connected"], "label"].to_numpy(np.int64)


def contact_graph(
    labels: np.ndarray,
    phases: np.ndarray,
    spacing=None,
    *,
    axis: int = 0,
    separator_side: CollectorEnd = "start",
    depth_bins: int = 5,
) -> ContactGraph:
    """Which particles have a conductive path to the current collector.

    Parameters
    ----------
    labels : (Z, Y, X) int ndarray
        Particle labels (0 = not a particle); need not be contiguous.
    phases : (Z, Y, X) integer ndarray
        Phase codes 0 = pore, 1 = CBD, 2 = NMC.  Only the CBD voxels
        matter (CBD voxels carrying a label count as particle).
    spacing : float or (3,) float, µm
        Voxel size along (z, y, x); it changes volumes, areas and nothing of
        the topology.
    axis : {0, 1, 2}
        Thickness axis of the electrode.
    separator_side : {"start", "end"}
        End of ``axis`` facing the separator; the current collector is the
        opposite face of the volume.
    depth_bins : int
        Number of equal depth bins of :attr:`ContactGraph.by_depth`.

    Returns
    -------
    ContactGraph

    Notes
    -----
    Inputs are not modified.  The volume is scanned in z-slabs (about
    8 M voxels each): the CBD clusters of each
    slab are labelled on their own and joined across the slab boundaries, so
    memory beyond the inputs is a few slabs' worth plus arrays per particle
    and per cluster, whatever the volume size.  A compiled kernel finds the
    contacts in one pass over each slab.
    """
    return _contact_graph(labels, phases, spacing, axis=axis, separator_side=separator_side, depth_bins=depth_bins,
                          slab=None)


def _contact_graph(labels: np.ndarray, phases: np.ndarray, spacing=None, *, axis: int, separator_side: str,
                   depth_bins: int, slab: int | None) -> ContactGraph:
    """:func:`contact_graph` scanning ``slab`` z-slices at a time (None: about 8 M voxels; tests set it)."""
    phases = check_phases(phases)
    labels = check_labels(labels, phases.shape)
    sp = normalize_spacing(spacing)
    check_choice(axis, "axis", (0, 1, 2))
    check_choice(separator_side, "separator_side", ("start", "end"))
    if isinstance(depth_bins, bool) or not isinstance(depth_bins, (int, np.integer)) or depth_bins < 1:
        raise ValueError(f"depth_bins must be an integer >= 1, got {depth_bins!r}")

    n_lab = int(labels.max())
    n_ax = labels.shape[axis]
    collector_index = n_ax - 1 if separator_side == "start" else 0
    sc = _scan_slabs(labels, phases, n_lab, axis, collector_index, slab)
    coll_plane = np.take(labels, collector_index, axis=axis)
    coll_lab = np.unique(coll_plane[coll_plane > 0]).astype(np.int64)
    edge_lab = _labels_on_faces(labels, skip=(axis, collector_index))
    reach = _reaches_collector(sc, n_lab, coll_lab)
    particles = _particle_rows(sc, reach, n_lab, coll_lab, edge_lab, sp, n_ax=n_ax, separator_side=separator_side)
    face_area = np.array([sp[1] * sp[2], sp[0] * sp[2], sp[0] * sp[1]])
    contacts = pd.DataFrame({"label_a": sc.pp_a, "label_b": sc.pp_b, "area_um2": sc.pp_faces @ face_area},
                            columns=list(CONTACT_COLUMNS))
    return ContactGraph(
        particles=particles, contacts=contacts, by_depth=isolation_by_depth(particles, depth_bins),
        summary=_isolation_summary(particles, sc, reach, n_lab), axis=axis, separator_side=separator_side,
        spacing=sp,
    )


def _reaches_collector(sc: _Scan, n_lab: int, coll_lab: np.ndarray) -> np.ndarray:
    """Whether each graph node is connected to the collector.

    Nodes: particle ``l`` -> ``l``, CBD cluster ``c`` -> ``n_lab + c``, the
    collector -> the last node.
    """
    collector = n_lab + sc.n_clusters + 1
    n_nodes = collector + 1
    coll_cl = sc.collector_clusters
    src = np.concatenate([sc.pp_a, sc.pc_l, coll_lab, n_lab + coll_cl])
    dst = np.concatenate([sc.pp_b, n_lab + sc.pc_c, np.full(coll_lab.size + coll_cl.size, collector, np.int64)])
    graph = sparse.coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n_nodes, n_nodes)).tocsr()
    _, comp = connected_components(graph, directed=False)
    return comp == comp[collector]


def _particle_rows(sc: _Scan, reach: np.ndarray, n_lab: int, coll_lab: np.ndarray, edge_lab: np.ndarray, sp,
                   *, n_ax: int, separator_side: str) -> pd.DataFrame:
    """:attr:`ContactGraph.particles`: one row per label present."""
    pp_a, pp_b, pc_l, pc_c, cluster_size = sc.pp_a, sc.pp_b, sc.pc_l, sc.pc_c, sc.cluster_size
    present = np.flatnonzero(sc.counts > 0)
    present = present[present > 0]
    voxel_vol = sp[0] * sp[1] * sp[2]
    n_vox = sc.counts[present]
    pos = sc.axis_sum[present] / np.maximum(n_vox, 1) / max(n_ax - 1, 1)
    depth = pos if separator_side == "start" else 1.0 - pos

    n_pp = np.bincount(pp_a, minlength=n_lab + 1) + np.bincount(pp_b, minlength=n_lab + 1)
    n_pc = np.bincount(pc_l, minlength=n_lab + 1)
    best = np.zeros(n_lab + 1, np.int64)
    if pc_l.size:
        order = np.lexsort((-pc_c, cluster_size[pc_c], pc_l))  # per label: ascending size, ties to the lowest id
        last = np.r_[pc_l[order][1:] != pc_l[order][:-1], True]
        best[pc_l[order][last]] = pc_c[order][last]
    touches_coll = np.zeros(n_lab + 1, bool)
    touches_coll[coll_lab] = True
    touches_edge = np.zeros(n_lab + 1, bool)
    touches_edge[edge_lab] = True
    return pd.DataFrame(
        {
            "label": present.astype(np.int64),
            "n_voxels": n_vox.astype(np.int64),
            "volume_um3": n_vox * voxel_vol,
            "depth_frac": depth,
            "touches_collector": touches_coll[present],
            "touches_edge": touches_edge[present],
            "n_particle_contacts": n_pp[present].astype(np.int64),
            "n_cbd_clusters": n_pc[present].astype(np.int64),
            "cbd_cluster_id": best[present],
            "cbd_cluster_volume_um3": cluster_size[best[present]] * voxel_vol,
            "connected": reach[present],
        },
        columns=list(PARTICLE_COLUMNS),
    )


def _isolation_summary(particles: pd.DataFrame, sc: _Scan, reach: np.ndarray, n_lab: int) -> IsolationSummary:
    """Counts and shares of isolated particles and of the CBD connected to the collector."""
    cluster_size, n_clusters = sc.cluster_size, sc.n_clusters
    cbd_total = int(cluster_size.sum())
    cbd_reach = reach[n_lab + 1 : n_lab + 1 + n_clusters]
    return IsolationSummary(
        **_particle_counts(particles),
        n_cbd_clusters=int(n_clusters),
        share_cbd_connected=float(cluster_size[1:][cbd_reach].sum() / cbd_total) if cbd_total else float("nan"),
    )


def _particle_counts(particles: pd.DataFrame) -> dict:
    """The particles' fields of :class:`IsolationSummary` (all but the CBD's) of :attr:`ContactGraph.particles`."""
    iso = ~particles["connected"].to_numpy(bool)
    vol = particles["volume_um3"].to_numpy(float)
    n = len(particles)
    return dict(
        n_particles=n,
        n_isolated=int(iso.sum()),
        share_isolated=float(iso.mean()) if n else float("nan"),
        share_isolated_volume=float(vol[iso].sum() / vol.sum()) if n and vol.sum() > 0 else float("nan"),
        n_isolated_at_edge=int((iso & particles["touches_edge"].to_numpy(bool)).sum()),
        n_touching_collector=int(particles["touches_collector"].sum()),
    )


def isolation_by_depth(particles: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Isolated share (number- and volume-weighted) in equal depth bins.

    Parameters
    ----------
    particles : DataFrame
        With ``depth_frac`` (0..1), ``volume_um3`` and ``connected``
        (:attr:`ContactGraph.particles`).
    bins : int
        Number of bins over 0..1; the last includes 1.

    Returns
    -------
    DataFrame
        Columns :data:`DEPTH_COLUMNS`, one row per bin.
    """
    missing = {"depth_frac", "volume_um3", "connected"} - set(particles.columns)
    if missing:
        raise ValueError(f"the particle table lacks the column(s) {sorted(missing)}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    depth = particles["depth_frac"].to_numpy(float)
    idx = np.clip(np.searchsorted(edges, depth, side="right") - 1, 0, int(bins) - 1)
    iso = ~particles["connected"].to_numpy(bool)
    vol = particles["volume_um3"].to_numpy(float)
    n = np.bincount(idx, minlength=bins)
    n_iso = np.bincount(idx, weights=iso, minlength=bins)
    v_all = np.bincount(idx, weights=vol, minlength=bins)
    v_iso = np.bincount(idx, weights=vol * iso, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n > 0, n_iso / np.maximum(n, 1), np.nan)
        share_v = np.where(v_all > 0, v_iso / np.where(v_all > 0, v_all, 1.0), np.nan)
    return pd.DataFrame(
        {"depth_lo": edges[:-1], "depth_hi": edges[1:], "n_particles": n.astype(np.int64),
         "n_isolated": n_iso.astype(np.int64), "share_isolated": share, "share_isolated_volume": share_v},
        columns=list(DEPTH_COLUMNS),
    )


def summary_table(graphs: Mapping[str, ContactGraph]) -> pd.DataFrame:
    """Several electrodes' :class:`IsolationSummary` as one table.

    Parameters
    ----------
    graphs : {electrode name: ContactGraph}

    Returns
    -------
    DataFrame
        ``electrode`` then the fields of :class:`IsolationSummary`, one row per electrode.
    """
    cols = ["electrode", *(f.name for f in fields(IsolationSummary))]
    return pd.DataFrame([{"electrode": n, **asdict(g.summary)} for n, g in graphs.items()], columns=cols)


def depth_table(graphs: Mapping[str, ContactGraph]) -> pd.DataFrame:
    """Several electrodes' :attr:`ContactGraph.by_depth` as one long table (``electrode`` first)."""
    parts = []
    for name, g in graphs.items():
        t = g.by_depth.copy()
        t.insert(0, "electrode", name)
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["electrode", *DEPTH_COLUMNS])
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- internals


SLAB_VOXELS = 8_000_000  # voxels per slab of the scan


@dataclass(frozen=True, eq=False)
class _Scan:
    """What :func:`_scan_slabs` gathers (cluster ids are final: 1..n_clusters)."""

    pp_a: np.ndarray            # (P,) int64, touching particle pairs, pp_a < pp_b, sorted
    pp_b: np.ndarray
    pp_faces: np.ndarray        # (P, 3) int64 shared faces per normal axis z, y, x
    pc_l: np.ndarray            # (Q,) int64 particle touching ...
    pc_c: np.ndarray            # (Q,) int64 ... CBD cluster, sorted by (particle, cluster)
    counts: np.ndarray          # (n_lab + 1,) int64 voxels per label
    axis_sum: np.ndarray        # (n_lab + 1,) float64 sum of the index along the thickness axis
    n_clusters: int
    cluster_size: np.ndarray    # (n_clusters + 1,) int64 voxels per cluster (0 for id 0)
    collector_clusters: np.ndarray  # (k,) int64 clusters with a voxel on the collector face


def _scan_slabs(labels, phases, n_lab: int, axis: int, collector_index: int, slab: int | None) -> _Scan:
    """Contacts and CBD clusters, one z-slab (plus the next slice) at a time.

    Each slab's CBD (unlabelled CBD voxels) is labelled with 6-connectivity
    on its own, including the first slice of the next slab; the two labellings
    of that shared slice tie a cluster to its continuation, and a graph of
    these ties gives the final clusters.  Voxels, sums and sizes are counted in
    the slices a slab owns; contacts from its owned slices to their +z, +y,
    +x neighbours (the shared slice included), so each face counts once.
    """
    nz, ny, nx = labels.shape
    if slab is None:
        slab = max(1, SLAB_VOXELS // max(ny * nx, 1))
    slab = max(1, int(slab))
    counts = np.zeros(n_lab + 1, np.int64)
    axis_sum = np.zeros(n_lab + 1, np.float64)
    pp_keys, pp_faces, pc_lab, pc_prov = [], [], [], []
    sizes, coll, seam_a, seam_b = [np.zeros(1, np.int64)], [], [], []
    offset = 0  # provisional cluster ids of earlier slabs
    prev_shared = None  # provisional ids on the previous slab's extra slice
    big = np.int64(n_lab) + 1
    for z0 in range(0, nz, slab):
        z1 = min(nz, z0 + slab)
        z2 = min(nz, z1 + 1)
        lab_s = labels[z0:z2]
        mask = phases[z0:z2] == CBD
        mask &= lab_s == 0
        if mask.any():
            cl, n = cc3d.connected_components(mask, connectivity=6, return_N=True, out_dtype=np.uint32)
        else:
            cl, n = np.zeros(mask.shape, np.uint32), 0
        del mask
        n = int(n)
        a, b, faces, pl, pcl = _scan_kernel(lab_s, cl, z1 - z0, n, axis, z0, counts, axis_sum)
        pp_keys.append(a * big + b)
        pp_faces.append(faces)
        pc_lab.append(pl)
        pc_prov.append(pcl + offset)
        sizes.append(K.label_counts(cl[: z1 - z0], n)[1:])
        first = cl[0].astype(np.int64)
        if prev_shared is not None:
            both = (prev_shared > 0) & (first > 0)
            seam_a.append(prev_shared[both])
            seam_b.append(first[both] + offset)
        prev_shared = np.where(cl[z1 - z0] > 0, cl[z1 - z0].astype(np.int64) + offset, 0) if z2 > z1 else None
        if axis == 0:
            if z0 <= collector_index < z1:
                plane = cl[collector_index - z0]
                coll.append(plane[plane > 0].astype(np.int64) + offset)
        else:
            plane = np.take(cl[: z1 - z0], collector_index, axis=axis)
            coll.append(plane[plane > 0].astype(np.int64) + offset)
        offset += n
        del cl

    # final clusters: provisional ids tied across slab boundaries
    n_prov = offset
    sa = np.concatenate(seam_a) if seam_a else np.zeros(0, np.int64)
    sb = np.concatenate(seam_b) if seam_b else np.zeros(0, np.int64)
    ties = sparse.coo_matrix((np.ones(sa.size, np.int8), (sa, sb)), shape=(n_prov + 1, n_prov + 1)).tocsr()
    _, comp = connected_components(ties, directed=False)
    # number the final clusters 1..n in order of their first provisional id; id 0 stays 0
    uniq, first_idx, final = np.unique(comp, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, np.int64)
    rank[np.argsort(first_idx, kind="stable")] = np.arange(uniq.size)
    final = rank[final.ravel()]  # final[0] == 0 because provisional 0 comes first
    n_clusters = int(uniq.size - 1)
    cluster_size = np.bincount(final, weights=np.concatenate(sizes), minlength=n_clusters + 1).astype(np.int64)
    cluster_size[0] = 0

    keys, inv = np.unique(np.concatenate(pp_keys), return_inverse=True)
    faces = np.zeros((keys.size, 3), np.int64)
    np.add.at(faces, inv.ravel(), np.concatenate(pp_faces))
    pc_keys = np.unique(np.concatenate(pc_lab) * (np.int64(n_clusters) + 1) + final[np.concatenate(pc_prov)])
    coll_final = np.unique(final[np.concatenate(coll)]) if coll else np.zeros(0, np.int64)
    return _Scan(
        pp_a=keys // big, pp_b=keys % big, pp_faces=faces,
        pc_l=pc_keys // (n_clusters + 1), pc_c=pc_keys % (n_clusters + 1),
        counts=counts, axis_sum=axis_sum, n_clusters=n_clusters, cluster_size=cluster_size,
        collector_clusters=coll_final[coll_final > 0],
    )


def _labels_on_faces(labels: np.ndarray, skip: tuple[int, int]) -> np.ndarray:
    """Distinct labels > 0 on the six faces of the volume except face ``skip`` = (axis, index)."""
    found = []
    for ax in range(3):
        for index in sorted({0, labels.shape[ax] - 1}):
            if (ax, index) == skip and labels.shape[ax] > 1:
                continue
            plane = np.take(labels, index, axis=ax)
            found.append(np.unique(plane[plane > 0]))
    return np.unique(np.concatenate(found)).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _scan_kernel(labels, clusters, n_own, n_clusters, axis, z_offset, counts, axis_sum):
    """One pass over a slab whose first ``n_own`` slices it owns (the rest is the next slab's first slice).

    Adds voxel counts and thickness-axis index sums of the owned slices to
    ``counts`` and ``axis_sum``; returns the touching particle pairs ``a < b``
    with their shared faces per normal axis, and the (particle, cluster) pairs
    in contact, each pair once.
    """
    nz, ny, nx = labels.shape
    big = np.int64(counts.size)
    cbig = np.int64(n_clusters) + 1
    pp = dict()
    pp[np.int64(-1)] = np.zeros(3, np.int64)
    pc = dict()
    pc[np.int64(-1)] = True
    for z in range(n_own):
        for y in range(ny):
            for x in range(nx):
                l0 = np.int64(labels[z, y, x])
                c0 = np.int64(clusters[z, y, x])
                if l0 > 0:
                    counts[l0] += 1
                    axis_sum[l0] += (z + z_offset) if axis == 0 else (y if axis == 1 else x)
                elif c0 == 0:
                    continue
                for d in range(3):  # the +z, +y, +x neighbours
                    inside, zz, yy, xx = K.step(z, y, x, 2 * d + 1, nz, ny, nx)
                    if not inside:
                        continue
                    l1 = np.int64(labels[zz, yy, xx])
                    c1 = np.int64(clusters[zz, yy, xx])
                    if l0 > 0 and l1 > 0 and l1 != l0:
                        key = min(l0, l1) * big + max(l0, l1)
                        if key not in pp:
                            pp[key] = np.zeros(3, np.int64)
                        pp[key][d] += 1
                    elif l0 > 0 and c1 > 0:
                        pc[l0 * cbig + c1] = True
                    elif c0 > 0 and l1 > 0:
                        pc[l1 * cbig + c0] = True
    n = len(pp) - 1
    pp_a = np.empty(n, np.int64)
    pp_b = np.empty(n, np.int64)
    faces = np.empty((n, 3), np.int64)
    i = 0
    for key, val in pp.items():
        if key < 0:
            continue
        pp_a[i] = key // big
        pp_b[i] = key % big
        faces[i] = val
        i += 1
    m = len(pc) - 1
    pc_l = np.empty(m, np.int64)
    pc_c = np.empty(m, np.int64)
    i = 0
    for key in pc.keys():
        if key < 0:
            continue
        pc_l[i] = key // cbig
        pc_c[i] = key % cbig
        i += 1
    return pp_a, pp_b, faces, pc_l, pc_c
