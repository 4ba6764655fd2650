"""The weighted k-means estimator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans
from sklearn.utils.estimator_checks import parametrize_with_checks

from imgclust import KMeans, k_means, kmeans_plusplus
from imgclust.cluster.engine import lloyd

# scikit-learn marks this same check as an expected failure for its own KMeans: the check
# shuffles the weighted data, so a randomly seeded method can only match in distribution.
# test_weight_equals_repetition below checks the exact property with the order kept.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": "sample_weight matches repetition only in "
    "distribution when the data are shuffled; exact equality is tested separately",
}


@parametrize_with_checks(
    [
        KMeans(n_clusters=3, random_state=0),
        KMeans(n_clusters=2, init="random", n_init=2, random_state=0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _blobs(seed=0, n=300, d=3):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * d, [10.0] * d, [0.0] * (d - 1) + [20.0]])
    return np.vstack([c + rng.normal(size=(n // 3, d)) for c in centres])


def test_hand_worked_example():
    X = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    km = KMeans(n_clusters=2, random_state=0).fit(X)
    assert sorted(km.cluster_centers_.tolist()) == [[0.0, 1.0], [10.0, 1.0]]
    assert km.inertia_ == pytest.approx(4.0)
    assert km.labels_[0] == km.labels_[1] != km.labels_[2] == km.labels_[3]


@pytest.mark.parametrize("d", [2, 3, 5])
def test_same_optimum_as_scikit_learn(d):
    X = _blobs(d=d)
    ours = KMeans(3, n_init=3, random_state=0).fit(X)
    theirs = SkKMeans(3, n_init=3, random_state=0).fit(X)
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-6)
    assert ours.score(X) == pytest.approx(-ours.inertia_)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_weight_equals_repetition(init):
    """Weight w counts exactly as w copies when the copies sit where the sample sits."""
    X = _blobs(seed=1, n=90)
    weights = np.random.default_rng(2).integers(0, 4, size=X.shape[0])
    X_repeated = np.repeat(X, weights, axis=0)
    start = X[[0, 40, 80]] if init == "random" else "k-means++"
    weighted = KMeans(3, init=start, random_state=5).fit(X, sample_weight=weights)
    repeated = KMeans(3, init=start, random_state=5).fit(X_repeated)
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-10)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-10)


def test_seed_gives_same_result_whatever_the_loop_version_and_threads(monkeypatch):
    import numba

    from imgclust.cluster import _loops

    X = _blobs(seed=3, n=60_000)
    serial = KMeans(3, random_state=7).fit(X)  # small enough for the serial loops
    monkeypatch.setattr(_loops, "PARALLEL_MIN_TERMS", 0)  # every loop on numba's threads
    parallel = KMeans(3, random_state=7).fit(X)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one_thread = KMeans(3, random_state=7).fit(X)
    finally:
        numba.set_num_threads(previous)
    for other in (parallel, one_thread):
        np.testing.assert_array_equal(other.cluster_centers_, serial.cluster_centers_)
        np.testing.assert_array_equal(other.labels_, serial.labels_)
        assert other.inertia_ == serial.inertia_


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_restarts_on_threads_give_the_result_of_restarts_in_turn(monkeypatch, init):
    from imgclust.cluster import engine

    X = _blobs(seed=4, n=3_000)
    weights = np.random.default_rng(0).random(X.shape[0])
    fits = {}
    for threads in (1, 3):
        monkeypatch.setattr(engine, "_restart_threads", lambda *args, t=threads: t)
        fits[threads] = engine.fit_kmeans(
            X, weights, 4, init=init, n_init=7, random_state=np.random.RandomState(11)
        )
    np.testing.assert_array_equal(fits[3].centers, fits[1].centers)
    np.testing.assert_array_equal(fits[3].labels, fits[1].labels)
    assert fits[3].inertia == fits[1].inertia


@pytest.mark.parametrize("version", ["serial", "parallel"])
@pytest.mark.parametrize("d", [2, 3, 7])
def test_e_step_matches_a_numpy_reference(version, d):
    from imgclust.cluster import _kernels

    n = 30_000  # several chunks
    rng = np.random.default_rng(d)
    X = rng.normal(size=(n, d)).astype(np.float32)
    w = rng.random(n)
    centers = X[rng.choice(n, 6, replace=False)].astype(np.float64)
    labels, min_dist = np.full(n, -1, dtype=np.int32), np.empty(n)
    name = "assign_and_accumulate_3d" if d == 3 else "assign_and_accumulate"
    step = getattr(_kernels, f"{name}_{version}")
    sums, weights, inertia, changed = step(X, w, centers, labels, min_dist)

    distances = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    assert labels.tolist() == distances.argmin(axis=1).tolist()
    np.testing.assert_allclose(min_dist, distances.min(axis=1), rtol=1e-6)
    assert changed == n
    np.testing.assert_allclose(weights, np.bincount(labels, weights=w, minlength=6))
    for f in range(d):
        expected = np.bincount(labels, weights=w * X[:, f], minlength=6)
        np.testing.assert_allclose(sums[:, f], expected, rtol=1e-9, atol=1e-9)
    assert inertia == pytest.approx(float(w @ min_dist), rel=1e-12)
    predicted, predicted_dist = np.full(n, -1, dtype=np.int32), np.empty(n)
    assign = getattr(_kernels, f"assign_{version}")
    assign(X, centers.astype(np.float32), predicted, predicted_dist)
    assert np.array_equal(predicted, labels)
    # the three-feature E-step sums the squares in float32, the generic loops in float64
    np.testing.assert_allclose(predicted_dist, min_dist, rtol=1e-6)


def test_float32_kept():
    X = _blobs().astype(np.float32)
    km = KMeans(3, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float32
    assert km.transform(X).dtype == np.float32


def test_kmeans_plusplus_picks_rows_and_ignores_zero_weight():
    X = _blobs(seed=4)
    weights = np.ones(X.shape[0])
    weights[:100] = 0
    centers, indices = kmeans_plusplus(X, 3, sample_weight=weights, random_state=0)
    np.testing.assert_array_equal(centers, X[indices])
    assert (indices >= 100).all()


def test_k_means_function_matches_estimator():
    X = _blobs()
    centers, labels, inertia = k_means(X, 3, random_state=0)
    km = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(centers, km.cluster_centers_)
    np.testing.assert_array_equal(labels, km.labels_)
    assert inertia == km.inertia_


def test_empty_cluster_is_relocated():
    X = np.array([[0.0], [0.1], [10.0], [10.1]])
    init = np.array([[0.05], [100.0]])  # the second centre attracts no sample at first
    fit = lloyd(X, np.ones(4), init, 100, 0.0)
    centers, labels = fit.centers, fit.labels
    assert len(set(labels.tolist())) == 2
    assert sorted(np.round(centers[:, 0], 2).tolist()) == [0.05, 10.05]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(n_clusters=5), "n_samples=4 should be >= n_clusters=5"),
        (dict(n_clusters=2, init=np.zeros((3, 2))), "init has shape"),
        (dict(n_clusters=0), "n_clusters"),
        (dict(n_clusters=2, tol=-1.0), "tol"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        KMeans(**params).fit(np.arange(8, dtype=float).reshape(4, 2))


@pytest.mark.parametrize("seed", range(4))
def test_epsilon_stops_when_no_centre_moves_more(seed):
    """OpenCV's rule: the run stops at the first iteration where no centre moved more than
    epsilon, and not before (each earlier iteration moved some centre further)."""
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, 1.0, (300, 3)) for c in (0, 4, 8, 12)])
    weights = np.ones(len(X))
    start = X[rng.choice(len(X), 4, replace=False)].copy()
    epsilon = 0.05
    fit = lloyd(X, weights, start, 300, 0.0, epsilon=epsilon)
    path = [start] + [
        lloyd(X, weights, start, i, 0.0, epsilon=0.0).centers for i in range(1, fit.n_iter + 1)
    ]
    moves = [np.sqrt(((b - a) ** 2).sum(axis=1)).max() for a, b in itertools.pairwise(path)]
    assert moves[-1] <= epsilon
    assert all(m > epsilon for m in moves[:-1])
    assert np.allclose(fit.centers, path[-1])
    # a looser epsilon never runs longer, and epsilon=0 runs to convergence
    assert lloyd(X, weights, start, 300, 0.0, epsilon=1.0).n_iter <= fit.n_iter
    assert lloyd(X, weights, start, 300, 0.0, epsilon=0.0).n_iter >= fit.n_iter
