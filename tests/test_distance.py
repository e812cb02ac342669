"""FS distances (3.2, 3.4) and exact nearest neighbours, against direct computation."""

import numpy as np
import pytest

from metricflow import (
    FSNeighbours,
    SampleConfig,
    fs_distance,
    fs_distance_matrix,
    manifold,
    nearest_neighbour_stats,
    projector_embedding,
    sample_points,
)


def _pair_at_distance(t, d=5, seed=0):
    """Two unit vectors in C^d at FS distance exactly t: u and cos(t) u + sin(t) v, v _|_ u."""
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, d)) + 1j * rng.standard_normal((2, d))
    u /= np.linalg.norm(u)
    v -= np.vdot(u, v) * u
    v /= np.linalg.norm(v)
    return u, np.cos(t) * u + np.sin(t) * v


@pytest.mark.parametrize("t", [1e-6, 1e-3, 0.3, 1.2, np.pi / 2 - 1e-4])
def test_fs_distance_exact(t):
    u, w = _pair_at_distance(t)
    # projective: scaling by any complex number changes nothing
    assert fs_distance(u * (2 - 3j), w * 0.1j, zero_below=0) == pytest.approx(t, rel=1e-9)


def test_arccos_formula_and_threshold():
    u, w = _pair_at_distance(0.7)
    assert fs_distance_matrix(u[None], w[None])[0, 0] == pytest.approx(0.7, rel=1e-12)
    # eq. 3.4: a distance of 1e-9 is below rounding for arccos and is set to zero
    u, w = _pair_at_distance(1e-9)
    assert fs_distance_matrix(u[None], w[None])[0, 0] == 0.0
    assert fs_distance(u, w) == 0.0
    assert fs_distance(u, w, zero_below=0) == pytest.approx(1e-9, rel=1e-6)


def test_distance_matrix_properties():
    pts = sample_points(SampleConfig(manifold("quintic"), 300, seed=1))
    D = fs_distance_matrix(pts.z)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0)
    assert D.min() >= 0 and D.max() <= np.pi / 2
    i, j = np.triu_indices(300, 1)
    np.testing.assert_allclose(D[i, j], fs_distance(pts.z[i], pts.z[j]), atol=1e-7)


def test_projector_embedding_gives_chordal_distance():
    pts = sample_points(SampleConfig(manifold("quartic"), 200, seed=2))
    e = projector_embedding(pts.z)
    assert e.shape == (200, 16)
    chord = np.linalg.norm(e[:100] - e[100:], axis=1)
    np.testing.assert_allclose(chord, np.sqrt(2) * np.sin(fs_distance(pts.z[:100], pts.z[100:], zero_below=0)), atol=1e-12)


def test_nearest_neighbours_match_brute_force():
    pts = sample_points(SampleConfig(manifold("quintic"), 3000, seed=3))
    D = fs_distance_matrix(pts.z)
    np.fill_diagonal(D, np.inf)
    stats = nearest_neighbour_stats(pts.z)
    np.testing.assert_allclose(stats["distances"], D.min(axis=1), atol=1e-7)
    assert stats["mean"] == pytest.approx(D.min(axis=1).mean(), abs=1e-7)
    assert stats["max"] == pytest.approx(D.min(axis=1).max(), abs=1e-7)

    train, test = pts.z[:2000], pts.z[2000:]
    nn = FSNeighbours(train)
    D2 = fs_distance_matrix(test, train)
    dist, idx = nn.query(test, k=1)
    assert np.array_equal(idx[:, 0], D2.argmin(axis=1))
    dist, idx = nn.query(test, k=4)
    np.testing.assert_allclose(dist, np.sort(D2, axis=1)[:, :4], atol=1e-7)
    within = nn.within(test, 0.35).toarray()
    mask = D2 <= 0.35
    assert (within > 0).sum() == mask.sum()
    np.testing.assert_allclose(within[mask], D2[mask], atol=1e-7)


def test_nearest_neighbour_with_duplicates_and_near_ties():
    pts = sample_points(SampleConfig(manifold("cubic"), 500, seed=4))
    z = np.concatenate([pts.z, pts.z[:10] * 1j])  # exact duplicates, rescaled
    stats = nearest_neighbour_stats(z)
    assert np.all(stats["distances"][:10] == 0) and np.all(stats["distances"][500:] == 0)
    assert np.array_equal(stats["neighbour"][500:], np.arange(10))
