"""3D particle surfaces coloured by detachment (PyVista; no streamlit import).

One merged mesh for all particles: the label volume as point data of a
``pv.ImageData`` and one ``contour_labels`` pass (SurfaceNets), each triangle
carrying its particle label.  The triangle budget is met by contouring a
strided copy of the labels when the mesh is far over budget (fast), then
decimating.

Optionally the carbon-binder domain (CBD, phase 1) is one more mesh, drawn as a
translucent neutral-grey surface over the particles (:func:`phase_mesh`); it
takes at most a third of the triangle budget (:func:`split_budget`).

The interactive view is a standalone vtk.js page from
``plotter.trame.export_html``, produced by a child Python process, ``python -m ui.view3d`` (trame
refuses to run outside the main thread and parses ``sys.argv``), with a
timeout; the caller falls back to :func:`screenshot` when it fails.
"""

from __future__ import annotations

import os

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from .render import DETACHMENT_CMAP, DETACHMENT_RANGE, NAN_COLOUR  # noqa: E402

MAX_TRIANGLES = 100_000
CBD_COLOUR = (0.6, 0.6, 0.6)  # neutral grey: outside the detachment colormap
CBD_OPACITY = 0.2
CBD_OPACITY_RANGE = (0.05, 0.6)
CBD_BUDGET_SHARE = 1 / 3


@dataclass(frozen=True)
class MeshInfo:
    """``n_particles``: particles in the (cropped) labels; ``n_drawn``: those with at least one triangle left
    (a particle of a few voxels can lose all its triangles to the sampling or the decimation)."""

    n_triangles: int
    n_particles: int
    stride: int
    n_drawn: int | None = None


def split_budget(max_triangles: int, show_cbd: bool) -> tuple[int, int]:
    """(CBD budget, budget left for the particles before the CBD mesh is made): CBD gets at most a third."""
    if not show_cbd:
        return 0, int(max_triangles)
    cbd = int(max_triangles * CBD_BUDGET_SHARE)
    return cbd, int(max_triangles) - cbd


def strided_crop(shape, crop: tuple[slice, slice, slice], max_voxels: int) -> tuple[tuple[slice, ...], int]:
    """``crop`` with the smallest common step that keeps it within ``max_voxels`` voxels, and that step.

    For a volume read lazily (a chunked analysis's Zarr arrays): the slices
    are explicit (start, stop, step), so indexing reads only what is drawn.
    """
    bounds = [c.indices(int(n))[:2] for c, n in zip(crop, shape)]
    n = int(np.prod([max(0, b - a) for a, b in bounds], dtype=np.int64))
    step = 1
    while n and np.prod([-(-(b - a) // step) for a, b in bounds], dtype=np.int64) > max_voxels:
        step += 1
    return tuple(slice(a, b, step) for a, b in bounds), step


def crop_origin(spacing, crop) -> list[float]:
    """(x, y, z) µm of a crop's first voxel (a mesh of the crop is moved there)."""
    return _crop_origin(spacing, crop)


def _crop_origin(spacing, crop) -> list[float]:
    if crop is None:
        return [0.0, 0.0, 0.0]
    return [float((crop[a].start or 0) * spacing[a]) for a in (2, 1, 0)]


ORIGIN_KEY = "origin_offset_um"  # field data: the volume's first voxel (x, y, z, µm) less the mesh's lower bounds


def _remember_origin(mesh, origin) -> None:
    """Keep the volume's origin with ``mesh`` (for the box's ticks, :func:`volume_origin`): as its offset from the
    mesh's lower bounds, so that it moves with the mesh (a strided read's mesh is translated afterwards)."""
    if mesh.n_points:
        lo = np.asarray(mesh.bounds, np.float64)[::2]
        mesh.field_data[ORIGIN_KEY] = np.asarray(origin, np.float64) - lo


def volume_origin(*meshes) -> np.ndarray | None:
    """(x, y, z) µm of the first voxel of the volume the meshes were made of (0 uncropped, the crop's corner where
    a depth range is cut); None where no mesh says (meshes not made by :func:`particle_mesh` / :func:`phase_mesh`)."""
    found = [np.asarray(m.bounds, np.float64)[::2] + np.asarray(m.field_data[ORIGIN_KEY], np.float64)
             for m in meshes if m is not None and m.n_points and ORIGIN_KEY in m.field_data]
    return np.min(found, axis=0) if found else None


def _contour(vol: np.ndarray, spacing, origin, max_triangles: int, boundary_style: str):
    """SurfaceNets of the labels in ``vol`` (one pass; strided while far over budget).

    Above four times ``max_triangles`` the labels are strided (every 2nd, 3rd
    ... voxel, spacing scaled; at most 8), as the triangle count falls roughly
    with the square of the stride.  Returns (mesh with cell data
    ``boundary_labels``, stride); not yet decimated.
    """
    import pyvista as pv

    stride = 1
    while True:
        sub = np.ascontiguousarray(vol[::stride, ::stride, ::stride])
        img = pv.ImageData(dimensions=sub.shape[::-1], spacing=tuple(float(spacing[a]) * stride for a in (2, 1, 0)),
                           origin=origin)
        img.point_data["labels"] = sub.astype(np.int32).ravel(order="C")
        mesh = img.contour_labels(boundary_style, smoothing=True, output_mesh_type="triangles")
        if mesh.n_cells <= 4 * max_triangles or stride >= 8:
            return mesh, stride
        stride = max(stride + 1, int(round(stride * np.sqrt(mesh.n_cells / (4 * max_triangles)))))


def particle_mesh(labels: np.ndarray, spacing, values_by_label: np.ndarray, *, max_triangles: int = MAX_TRIANGLES,
                  crop: tuple[slice, slice, slice] | None = None):
    """Closed surface of every particle with a per-triangle ``detachment``.

    One SurfaceNets pass (``contour_labels(boundary_style="all")``) gives each
    particle a closed surface, also where particles touch.  Above four times the
    triangle budget the labels are strided (every 2nd, 3rd ... voxel, spacing
    scaled); the rest of the way the mesh is decimated, and each decimated
    triangle takes the label of the nearest original triangle.

    Parameters
    ----------
    labels : (Z, Y, X) int
    spacing : (3,) float, µm
    values_by_label : (L + 1,) float
        Value per label (NaN allowed).
    max_triangles : int
    crop : tuple of 3 slices, optional
        Sub-volume.

    Returns
    -------
    mesh : pyvista.PolyData
        Cell data ``label`` and ``detachment``; coordinates in µm (x, y, z).
    info : MeshInfo
    """
    import pyvista as pv

    lab = labels if crop is None else labels[crop]
    if lab.size == 0 or not np.any(lab):
        return pv.PolyData(), MeshInfo(0, 0, 1)
    mesh, stride = _contour(lab, spacing, _crop_origin(spacing, crop), max_triangles, "all")
    if mesh.n_cells == 0:
        return mesh, MeshInfo(0, 0, stride)
    bl = np.asarray(mesh.cell_data["boundary_labels"])
    cell_labels = (bl if bl.ndim == 1 else bl.max(axis=1)).astype(np.int64)
    if mesh.n_cells > max_triangles:
        dec = mesh.decimate(1.0 - max_triangles / mesh.n_cells)
        nearest = mesh.find_closest_cell(dec.cell_centers().points)
        cell_labels = cell_labels[np.asarray(nearest, np.int64)]
        mesh = dec
    mesh.cell_data.clear()
    vals = np.asarray(values_by_label, np.float64)
    ok = (cell_labels >= 0) & (cell_labels < len(vals))
    det = np.full(len(cell_labels), np.nan)
    det[ok] = vals[cell_labels[ok]]
    mesh.cell_data["label"] = cell_labels
    mesh.cell_data["detachment"] = det
    _remember_origin(mesh, _crop_origin(spacing, crop))
    n_in = int(np.count_nonzero(np.unique(lab)))
    drawn = np.unique(cell_labels)
    return mesh, MeshInfo(int(mesh.n_cells), n_in, stride, int(np.count_nonzero(drawn)))


#: A face's value in a particle's face-by-face mesh (:func:`face_mesh`): 1 facing pore, 0 facing CBD (the ends of
#: the detachment's colour scale), NaN (its grey) facing another particle or the volume's edge (not in detachment).
FACE_VALUES = (1.0, 0.0, np.nan, np.nan)


def round_origin(spacing, window) -> list[float]:
    """(x, y, z) µm of a window's first voxel rounded down to the box's tick step over the window's longest side,
    so that a box from there has round ticks (a particle's box from its window's corner read 1.6, 11.6, 21.6)."""
    lo = np.asarray(crop_origin(spacing, window), np.float64)
    span = max(float((w.stop - w.start) * s) for w, s in zip(window, spacing))
    step = _major_step(span) if span > 0 else 1.0
    return [float(np.floor(v / step + 1e-9) * step) for v in lo]


def face_mesh(faces, origin=(0.0, 0.0, 0.0)):
    """One particle's surface as its voxel faces (:func:`core.surface.particle_faces`), each a quad coloured as the
    detachment counts it: cell data ``detachment`` 1 (facing pore), 0 (facing CBD) or NaN (facing another particle
    or the volume's edge) and ``kind`` (:data:`core.surface.FACE_KINDS` code); coordinates in µm (x, y, z), voxel
    centres at index × spacing as in :func:`particle_mesh`.  ``origin``: (x, y, z) µm where the box's ticks start
    (:func:`round_origin` of the window read: the box spans the particle's surroundings, not the whole volume).

    Returns
    -------
    mesh : pyvista.PolyData
    """
    import pyvista as pv

    sp = np.asarray(faces.spacing, np.float64)
    n = len(faces.kind)
    if n == 0:
        return pv.PolyData()
    centre = faces.voxel.astype(np.float64)  # (z, y, x) index of each face's voxel
    corners = np.empty((n, 4, 3), np.float64)
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])  # a square's corners, counter-clockwise
    for a in range(3):
        on = faces.axis == a
        if not on.any():
            continue
        u, v = [b for b in range(3) if b != a]
        c = np.repeat(centre[on][:, None, :], 4, axis=1)
        c[:, :, a] += 0.5 * faces.side[on][:, None]
        c[:, :, u] += unit[None, :, 0]
        c[:, :, v] += unit[None, :, 1]
        corners[on] = c
    points = (corners * sp).reshape(-1, 3)[:, ::-1]  # (z, y, x) µm -> (x, y, z)
    cells = np.hstack([np.full((n, 1), 4), np.arange(4 * n).reshape(n, 4)]).ravel()
    mesh = pv.PolyData(points, faces=cells)
    mesh.cell_data["detachment"] = np.asarray(FACE_VALUES, np.float64)[faces.kind]
    mesh.cell_data["kind"] = faces.kind.astype(np.uint8)
    _remember_origin(mesh, origin)
    return mesh


def phase_mesh(phases: np.ndarray, spacing, code: int = 1, *, max_triangles: int = MAX_TRIANGLES // 3,
               crop: tuple[slice, slice, slice] | None = None):
    """Surface of one phase (default 1 = CBD) as one mesh of at most ``max_triangles`` triangles.

    The mask ``phases == code`` is contoured like the particles (SurfaceNets,
    strided while far over budget, then decimated); no cell data.

    Returns
    -------
    mesh : pyvista.PolyData
        Coordinates in µm (x, y, z).
    info : MeshInfo
        ``n_particles`` is 0.
    """
    import pyvista as pv

    ph = phases if crop is None else phases[crop]
    mask = ph == code
    if mask.size == 0 or not mask.any() or max_triangles <= 0:
        return pv.PolyData(), MeshInfo(0, 0, 1)
    mesh, stride = _contour(mask.view(np.uint8), spacing, _crop_origin(spacing, crop), max_triangles, "external")
    if mesh.n_cells > max_triangles:
        mesh = mesh.decimate(1.0 - max_triangles / mesh.n_cells)
        if mesh.n_cells > max_triangles:  # decimation stops short of the target on some meshes
            mesh = mesh.decimate(1.0 - max_triangles / mesh.n_cells)
    mesh.cell_data.clear()
    mesh.point_data.clear()
    _remember_origin(mesh, _crop_origin(spacing, crop))
    return mesh, MeshInfo(int(mesh.n_cells), 0, stride)


def _plotter(mesh, cbd=None, cbd_opacity: float = CBD_OPACITY, *, off_screen: bool = True,
             window_size=(900, 700)):
    import pyvista as pv

    p = pv.Plotter(off_screen=off_screen, window_size=list(window_size))
    p.set_background("white")
    if mesh.n_cells:
        p.add_mesh(
            mesh, scalars="detachment", cmap=DETACHMENT_CMAP, clim=list(DETACHMENT_RANGE),
            nan_color=[c / 255 for c in NAN_COLOUR], show_edges=False, smooth_shading=True,
            show_scalar_bar=False,  # the page draws the one colour bar of every view (charts.colour_bar)
        )
    if cbd is not None and cbd.n_cells:
        # translucent neutral grey, no specular highlight: the particles stay readable through it.  No depth
        # peeling: with the EGL/llvmpipe off-screen window it drops translucent actors from the image altogether.
        p.add_mesh(cbd, color=CBD_COLOUR, opacity=float(cbd_opacity), show_edges=False, smooth_shading=True,
                   show_scalar_bar=False, specular=0.0, name="cbd")
    p.add_axes(color="black", xlabel="x", ylabel="y", zlabel="z")
    p.camera_position = "iso"
    if mesh.n_cells or (cbd is not None and cbd.n_cells):
        _show_scale(p, _scale_bounds(mesh, cbd))
        p.reset_camera()
        p.camera.zoom(0.85)  # the box's tick labels and titles, outside it, stay in the picture
    return p


def _font_file() -> str | None:
    """A TrueType font with "µ" (matplotlib's DejaVu Sans; pyvista needs matplotlib), or None."""
    try:
        import matplotlib

        path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    except ImportError:  # pragma: no cover - pyvista requires matplotlib
        return None
    return path if os.path.exists(path) else None


def axis_titles(font_file: str | None) -> tuple[str, str, str]:
    """The box's axis titles: ``x (µm)`` ...; ``x (um)`` where no font with "µ" is at hand (VTK's built-in
    font has none: it would print "x (m)", metres)."""
    unit = "µm" if font_file else "um"
    return tuple(f"{a} ({unit})" for a in "xyz")


def _scale_bounds(*meshes) -> list[float]:
    """The box of the scale: from the volume's origin (:func:`volume_origin`; the meshes' lower bounds where none
    is known) to the meshes' upper bounds.  The surfaces reach about a voxel below the first voxel's centre: a box
    from there had started its ticks at "-0.4"."""
    b = np.array([m.bounds for m in meshes if m is not None and m.n_points], np.float64)
    lo, hi = b[:, ::2].min(axis=0), b[:, 1::2].max(axis=0)
    origin = volume_origin(*meshes)
    if origin is not None:
        lo = np.minimum(origin, hi)
    return [float(v) for pair in zip(lo, hi) for v in pair]


def _major_step(span: float) -> float:
    """The spacing of :vtk:`vtkCubeAxesActor`'s major ticks over ``span`` (its ``AdjustTicksComputeRange``): a power
    of ten, halved below 5 ticks and fifthed at 2 or fewer."""
    power = np.log10(span)
    power = np.copysign(abs(power) + 1e-9, power) - (1.0 if power < 0 else 0.0)
    decade = 10.0 ** int(power)
    ratio = span / decade
    ticks = int(ratio) if ratio <= 0.5 else int(ratio) + 1  # VTK's FRound
    return decade / (5.0 if ticks <= 2 else 2.0 if ticks < 5 else 1.0)


LABELS_PER_BOX = 5  # at most about this many labels along the box's longest side's length
CORNER_GAP = 0.3  # of a tick step: a tick closer than this to an axis' far end is not labelled (the corner's)


def tick_labels(lo: float, hi: float, *, first: bool = True, min_gap: float = 0.0) -> list[str]:
    """Labels of the major ticks VTK draws on an axis from ``lo`` to ``hi`` (µm): one per step from ``lo`` on,
    ``lo`` itself first (0, or the crop's origin), the step's decimals (one more where ``lo`` is not on a step).

    Left blank, so that no label is drawn over another: a tick within :data:`CORNER_GAP` of a step from ``hi``
    and, with ``first=False``, the first tick (both at corners of the box, where another axis has its label);
    all but every m-th tick where the step is under ``min_gap`` (µm; a short axis of a flat depth range)."""
    span = float(hi) - float(lo)
    if not span > 0:
        return [f"{lo:g}"]
    step = _major_step(span)
    n = int(np.floor(span / step + 2 * np.finfo(np.float32).eps)) + 1
    decimals = max(0, -int(np.floor(np.log10(step) + 1e-9)))
    if abs(lo / step - round(lo / step)) > 1e-6:
        decimals += 1
    every = max(1, int(np.ceil(min_gap / step - 1e-9)))
    values = [lo + k * step for k in range(n)]
    out = [f"{0.0 if abs(v) < step * 1e-6 else v:.{decimals}f}" for v in values]
    for k, v in enumerate(values):
        if (k > 0 and hi - v < CORNER_GAP * step) or (k == 0 and not first) or k % every:
            out[k] = ""
    return out


def _show_scale(p, bounds) -> None:
    """A box with ticks in µm around everything drawn (``bounds``: from :func:`_scale_bounds`): the scale of the
    view (the static image and the vtk.js page alike; the vtk.js page draws its own labels, with "µ").

    The labels are :func:`tick_labels`: from the volume's origin, on round steps, none at the front corner (where
    the x and y axes end together in the "iso" view) and one at the left corner (where y and z start): z's, unless
    y starts at a crop's origin and z at 0."""
    import vtk

    font = _font_file()
    x, y, z = axis_titles(font)
    axes = p.show_bounds(bounds=list(bounds), xtitle=x, ytitle=y, ztitle=z, color="black", grid=False,
                         location="outer", ticks="outside", font_size=16)
    b = np.asarray(bounds, np.float64)
    gap = float(np.max(b[1::2] - b[::2])) / LABELS_PER_BOX  # the labels of a short axis as far apart as a long one's
    y_first = abs(b[2]) > 1e-9 and abs(b[4]) <= 1e-9  # y cut by a crop, z not: y's origin is the one to read
    for i, first in enumerate((True, y_first, not y_first)):
        labels = vtk.vtkStringArray()
        for text in tick_labels(b[2 * i], b[2 * i + 1], first=first, min_gap=gap):
            labels.InsertNextValue(text)
        axes.SetAxisLabels(i, labels)
    if font is not None:  # VTK's default font has no "µ": draw the titles and labels with DejaVu Sans
        axes.SetUseTextActor3D(True)
        for i in range(3):
            for prop in (axes.GetTitleTextProperty(i), axes.GetLabelTextProperty(i)):
                prop.SetFontFamily(vtk.VTK_FONT_FILE)
                prop.SetFontFile(font)


def screenshot(mesh, *, cbd=None, cbd_opacity: float = CBD_OPACITY, window_size=(900, 700)) -> np.ndarray:
    """Off-screen image (H, W, 3) uint8 of the particle mesh (and the translucent CBD mesh, if given)."""
    p = _plotter(mesh, cbd, cbd_opacity, window_size=window_size)
    try:
        return np.asarray(p.screenshot(return_img=True))
    finally:
        p.close()


def render(mesh, *, interactive: bool, cbd=None, cbd_opacity: float = CBD_OPACITY) -> dict:
    """The view a page shows: the interactive vtk.js page (:func:`export_html`) where asked and it works, else the
    static image (:func:`screenshot`).  Returns ``{"html": str or None, "png": array or None, "error": why the
    interactive export failed, or None}``."""
    scene = {"cbd": cbd, "cbd_opacity": float(cbd_opacity)} if cbd is not None and cbd.n_cells else {}
    out = {"html": None, "png": None, "error": None}
    if interactive:
        try:
            out["html"] = export_html(mesh, **scene)
        except RuntimeError as exc:
            out["error"] = str(exc)
    if out["html"] is None:
        out["png"] = screenshot(mesh, **scene)
    return out


def _export_html_file(mesh_path: str, cbd_path: str | None, cbd_opacity: float, out_path: str) -> None:
    """Runs in the child process (``python -m ui.view3d``): read the meshes, write the vtk.js page."""
    import pyvista as pv

    mesh = pv.read(mesh_path)
    cbd = pv.read(cbd_path) if cbd_path else None
    p = _plotter(mesh, cbd, cbd_opacity)
    try:
        out = p.trame.export_html(None)
    finally:
        p.close()
    text = out.getvalue() if hasattr(out, "getvalue") else str(out)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


def export_html(mesh, *, cbd=None, cbd_opacity: float = CBD_OPACITY, timeout: float = 120.0) -> str:
    """Standalone interactive vtk.js HTML page of the particle mesh and, if given, the translucent CBD mesh.

    Made by a child Python process (``python -m ui.view3d``), bounded by ``timeout`` s.  Not a
    multiprocessing child: under ``streamlit run`` the ``__main__`` module is the app script, which a
    spawned multiprocessing child would run again (with dozens of "missing ScriptRunContext" warnings).

    Raises
    ------
    RuntimeError
        If the export fails or times out (the message says why).
    """
    import subprocess
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="detach3d-") as tmp:
        path = os.path.join(tmp, "mesh.vtp")
        mesh.save(path)
        cbd_path = ""
        if cbd is not None and cbd.n_cells:
            cbd_path = os.path.join(tmp, "cbd.vtp")
            cbd.save(cbd_path)
        out_path = os.path.join(tmp, "view.html")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        try:
            proc = subprocess.run([sys.executable, "-m", "ui.view3d", path, cbd_path, repr(float(cbd_opacity)),
                                   out_path], cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the interactive export took longer than {timeout:.0f} s") from None
        if proc.returncode != 0 or not os.path.exists(out_path):
            lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
            why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
            raise RuntimeError(f"the interactive export failed: {why}")
        with open(out_path, encoding="utf-8") as f:
            return f.read()


if __name__ == "__main__":  # the child process of export_html
    args, sys.argv = sys.argv[1:], sys.argv[:1]  # trame parses sys.argv: leave it nothing to parse
    _export_html_file(args[0], args[1] or None, float(args[2]), args[3])
