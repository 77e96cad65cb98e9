"""Tests for core.surface: one particle's voxel faces and what each touches, as the particle table counts them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.metrics import particle_table
from core.surface import FACE_KINDS, particle_faces, window_around
from core.synth import demo_electrode

SP = (1.0, 2.0, 3.0)  # z, y, x: faces normal to z 6 µm², to y 3 µm², to x 2 µm²


def _scene():
    """A 3x3x3 cube (label 1) on a CBD slab (z = 1) under a second particle (label 2, z = 5), pore elsewhere."""
    labels = np.zeros((8, 7, 7), np.int32)
    phases = np.zeros((8, 7, 7), np.uint8)
    labels[2:5, 2:5, 2:5] = 1
    labels[5, 2:5, 2:5] = 2
    phases[labels > 0] = 2
    phases[1, 2:5, 2:5] = 1
    return labels, phases


def test_a_cube_on_cbd_under_a_particle():
    labels, phases = _scene()
    f = particle_faces(labels, phases, 1, SP)
    assert len(f.kind) == 54
    assert f.areas() == {"pore": 9 * 2 * 3 + 9 * 2 * 2, "cbd": 9 * 6, "particle": 9 * 6, "edge": 0.0}
    assert f.detachment == pytest.approx(90 / 144)
    below = f.kind[(f.axis == 0) & (f.side == -1)]
    assert set(below) == {FACE_KINDS.index("cbd")} and len(below) == 9
    assert set(f.kind[(f.axis == 0) & (f.side == 1)]) == {FACE_KINDS.index("particle")}
    assert f.voxel[:, 0].min() == 2 and f.voxel[:, 0].max() == 4


def test_the_table_counts_the_same_areas():
    labels, phases = _scene()
    row = particle_table(labels, phases, SP, separator_side="start").set_index("label").loc[1]
    a = particle_faces(labels, phases, 1, SP).areas()
    assert [a[k] for k in ("pore", "cbd", "particle", "edge")] == pytest.approx(
        [row.area_pore_um2, row.area_cbd_um2, row.area_particle_um2, row.area_edge_um2])


def test_a_crack_inside_is_filled_and_the_volume_faces_are_the_edge():
    labels = np.zeros((7, 7, 7), np.int32)
    labels[0:5, 1:6, 1:6] = 1  # touches the z = 0 face of the volume
    labels[2, 3, 3] = 0  # an enclosed crack: no face of it is surface
    phases = np.where(labels > 0, 2, 0).astype(np.uint8)
    f = particle_faces(labels, phases, 1, 1.0)
    assert len(f.kind) == 6 * 25 and f.areas()["edge"] == 25 and f.areas()["pore"] == 125


def test_no_open_interface_has_no_detachment():
    labels = np.zeros((3, 3, 3), np.int32)
    labels[1, 1, 1] = 1
    phases = np.full((3, 3, 3), 2, np.uint8)
    f = particle_faces(labels, phases, 1)
    assert f.areas()["particle"] == 6 and math.isnan(f.detachment)


def test_every_particle_of_a_demo_matches_its_table_row():
    """The faces of every particle, read through the window of its table row, sum to the table's areas exactly."""
    e = demo_electrode("cycled-5C", rng=2, shape=(64, 64, 64))
    t = particle_table(e.labels, e.phases, e.spacing, separator_side="start")
    for row in t.itertuples():
        w = window_around((row.centroid_z_um, row.centroid_y_um, row.centroid_x_um),
                          (row.extent_z_um, row.extent_y_um, row.extent_x_um), e.spacing, e.labels.shape)
        a = particle_faces(e.labels, e.phases, row.label, e.spacing, window=w).areas()
        assert [a[k] for k in ("pore", "cbd", "particle", "edge")] == pytest.approx(
            [row.area_pore_um2, row.area_cbd_um2, row.area_particle_um2, row.area_edge_um2], rel=1e-12), row.label


def test_a_fill_outside_the_field_of_view_is_the_edge():
    labels, phases = _scene()
    phases[:, :, 5:] = 255  # beside the cube along +x
    a = particle_faces(labels, phases, 1, SP, no_data_code=255).areas()
    assert a["edge"] == 9 * 2 and a["pore"] == 9 * 2 * 3 + 9 * 2


def test_bad_input_is_refused_with_one_sentence():
    labels, phases = _scene()
    with pytest.raises(ValueError, match="particle 3 is not in the window"):
        particle_faces(labels, phases, 3)
    with pytest.raises(ValueError, match="cuts particle 1: widen it"):
        particle_faces(labels, phases, 1, window=(slice(3, 8), slice(0, 7), slice(0, 7)))
    with pytest.raises(ValueError, match="label must be a whole number of at least 1"):
        particle_faces(labels, phases, 0)
    with pytest.raises(ValueError, match="must be one 3D shape"):
        particle_faces(labels, phases[:-1], 1)
    w = window_around((3.0, 6.0, 9.0), (3.0, 6.0, 9.0), SP, labels.shape, margin=1)
    assert w == (slice(0, 8), slice(0, 7), slice(0, 7))  # clipped to the volume
