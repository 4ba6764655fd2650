"""segment(): hand-worked answers, the guarantees as properties, dtypes and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans as SkKMeans

from imgclust import segment
from imgclust.errors import InvalidParameterError
from imgclust.pixels.colorspace import rgb_to_features
from imgclust.pixels.segment import label_dtype

from .conftest import FOUR_COLOURS


@pytest.mark.parametrize("space", ["rgb", "lab", "hsv"])
def test_four_flat_colours_give_exact_palette_and_counts(four_colour_image, space):
    seg = segment(four_colour_image, 4, color_space=space, random_state=0)
    assert sorted(map(tuple, seg.palette.tolist())) == sorted(map(tuple, FOUR_COLOURS.tolist()))
    assert seg.counts.tolist() == [30, 30, 30, 30]
    assert seg.inertia == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(seg.recolor(), four_colour_image)
    assert seg.method == "distinct-colours" and seg.n_distinct == 4


def test_lab_matches_scikit_image():
    """Our NumPy Lab is scikit-image's rgb2lab: every 8-bit colour on a grid of step 3 (with
    both ends of each channel) and random float colours, to well under a hundredth of a unit."""
    from skimage.color import rgb2lab

    levels = np.unique(np.r_[np.arange(0, 256, 3), 255]).astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    expected = rgb2lab(grid[:, None, :].astype(np.float64) / 255)[:, 0, :]
    np.testing.assert_allclose(rgb_to_features(grid, "lab"), expected, rtol=0, atol=2e-3)
    floats = np.random.default_rng(0).random((10_000, 3), dtype=np.float32)
    expected = rgb2lab(floats[:, None, :].astype(np.float64))[:, 0, :]
    np.testing.assert_allclose(rgb_to_features(floats, "lab"), expected, rtol=0, atol=2e-3)


def test_distinct_route_equals_kmeans_on_every_pixel(photo):
    """Same objective: our converged centres are a fixed point of k-means on all pixels."""
    seg = segment(photo, 5, color_space="rgb", random_state=3, tol=0)
    pixels = photo.reshape(-1, 3).astype(np.float64)
    reference = SkKMeans(5, init=seg.centers, n_init=1, tol=0).fit(pixels)
    np.testing.assert_allclose(reference.cluster_centers_, seg.centers, rtol=1e-6)
    assert reference.inertia_ == pytest.approx(seg.inertia, rel=1e-6)
    np.testing.assert_array_equal(reference.predict(pixels), seg.labels.reshape(-1))


def test_inertia_is_the_sum_over_pixels(photo):
    seg = segment(photo, 6, color_space="lab", random_state=0)
    features = rgb_to_features(photo.reshape(-1, 3), "lab")
    direct = ((features - seg.centers[seg.labels.reshape(-1)]) ** 2).sum()
    assert seg.inertia == pytest.approx(direct, rel=1e-6)


def test_palette_is_mean_rgb_of_cluster_pixels(photo):
    seg = segment(photo, 4, color_space="hsv", random_state=1)
    flat = photo.reshape(-1, 3).astype(float)
    for k in range(4):
        members = flat[seg.labels.reshape(-1) == k]
        np.testing.assert_array_equal(
            seg.palette[k], np.clip(np.rint(members.mean(axis=0)), 0, 255)
        )
        assert seg.counts[k] == members.shape[0]


def test_hue_is_circular():
    """Reds at hue 0.01 and 0.99 belong together; a green is the other cluster."""
    img = np.array([[[255, 15, 0], [255, 0, 15], [255, 8, 0], [0, 255, 0]]], dtype=np.uint8)
    seg = segment(img, 2, color_space="hsv", random_state=0)
    assert seg.labels[0, 0] == seg.labels[0, 1] == seg.labels[0, 2] != seg.labels[0, 3]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_any_dtype_and_channel_count(four_colour_image, dtype, channels):
    img = four_colour_image.astype(np.float64) / 255
    if channels in (0, 1):
        img = img[:, :, 0] if channels == 0 else img[:, :, :1]
    elif channels == 4:
        img = np.dstack([img, np.ones(img.shape[:2])])
        img[0, 0, 3] = 0  # one transparent pixel
    scale = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1)
    original = (np.rint(img * scale) if scale > 1 else img).astype(dtype)
    before = original.copy()
    k = 2 if channels in (0, 1) else 4
    seg = segment(original, k, color_space="rgb", random_state=0)
    np.testing.assert_array_equal(original, before)  # the caller's array is not changed
    assert seg.labels.shape == original.shape[:2]
    assert seg.palette.dtype == np.uint8 and seg.palette.shape == (k, 3)
    assert seg.method == ("distinct-colours" if dtype == np.uint8 else "sample")
    if channels == 4:
        assert (
            seg.labels[0, 0] == -1 and seg.counts.sum() == original.shape[0] * original.shape[1] - 1
        )


def test_spatial_features_split_equal_colours_by_place():
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    plain = segment(img + 128, 1, color_space="rgb", random_state=0)
    assert plain.n_clusters == 1
    seg = segment(
        np.dstack([img[:, :, 0] + 128] * 3)
        + np.random.default_rng(0).integers(0, 2, (20, 40, 3)).astype(np.uint8),
        2,
        color_space="rgb",
        spatial=1.0,
        random_state=0,
    )
    left, right = seg.labels[:, :20], seg.labels[:, 20:]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1 and left[0, 0] != right[0, 0]


def test_mask_excludes_pixels(four_colour_image):
    mask = np.ones(four_colour_image.shape[:2], dtype=bool)
    mask[:3] = False  # the red block
    seg = segment(four_colour_image, 3, color_space="rgb", mask=mask, random_state=0)
    assert (seg.labels[:3] == -1).all() and (seg.labels[3:] >= 0).all()
    assert [255, 0, 0] not in seg.palette.tolist()
    assert seg.recolor(fill=(1, 2, 3))[0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("spatial", [0.0, 0.5])  # the distinct-colour and the sampled route
def test_label_map_is_compact_and_agrees_with_labels(four_colour_image, spatial):
    mask = np.ones(four_colour_image.shape[:2], dtype=bool)
    mask[:3] = False
    seg = segment(
        four_colour_image, 3, color_space="rgb", mask=mask, spatial=spatial, random_state=0
    )
    assert seg.label_map.dtype == np.uint8 and seg.excluded_label == 255
    assert (seg.label_map[:3] == 255).all() and (seg.label_map[3:] < 3).all()
    assert seg.labels.dtype == np.int32
    np.testing.assert_array_equal(seg.labels, np.where(mask, seg.label_map.astype(np.int32), -1))
    np.testing.assert_array_equal(seg.mask, mask)


@pytest.mark.parametrize(
    ("k", "dtype"),
    [(1, np.uint8), (255, np.uint8), (256, np.uint16), (65535, np.uint16), (65536, np.uint32)],
)
def test_label_dtype_leaves_its_maximum_for_excluded_pixels(k, dtype):
    assert label_dtype(k) == dtype


def test_random_state_none_draws_and_reports_a_seed(photo):
    seg = segment(photo, 3, random_state=None)
    again = segment(photo, 3, random_state=seg.random_state)
    np.testing.assert_array_equal(seg.labels, again.labels)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_clusters=0), "n_clusters=0 must be an integer >= 1"),
        (
            dict(n_clusters=5),
            "n_clusters=5 is more than the 4 distinct colours in the image; choose K <= 4",
        ),
        (
            dict(n_clusters=2, color_space="xyz"),
            "color_space='xyz' is not known; choose one of rgb, lab, hsv",
        ),
        (dict(n_clusters=2, n_init=0), "n_init=0"),
        (dict(n_clusters=2, init="best"), "init='best' is not known"),
        (dict(n_clusters=2, mask=np.zeros((12, 10), bool)), "no pixel is left to cluster"),
        (dict(n_clusters=2, mask=np.ones((3, 3), bool)), "mask has shape"),
    ],
)
def test_bad_parameters(four_colour_image, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        segment(four_colour_image, **kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((4, 4, 5), np.uint8), "expected"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (np.full((4, 4, 3), 2.0), r"must lie in \[0, 1\]"),
        (np.full((4, 4, 3), -3, dtype=np.int16), "negative"),
    ],
)
def test_bad_arrays(image, match):
    with pytest.raises(InvalidParameterError, match=match):
        segment(image, 1)


def test_sample_route_reports_too_few_distinct_colours():
    img = np.zeros((10, 10, 3), dtype=np.float32)
    img[:5] = 1.0
    with pytest.raises(InvalidParameterError, match="is more than the 2 distinct colours"):
        segment(img, 3)


images = arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(4)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    image=images,
    k=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
    space=st.sampled_from(["rgb", "lab", "hsv"]),
)
def test_guarantees(image, k, seed, space):
    included = image[:, :, 3] > 0
    n_distinct = len({tuple(p) for p in image[:, :, :3][included].tolist()})
    if n_distinct == 0 or k > n_distinct:
        with pytest.raises(InvalidParameterError):
            segment(image, k, color_space=space, random_state=seed)
        return
    seg = segment(image, k, color_space=space, random_state=seed)
    assert seg.labels.shape == image.shape[:2]
    assert ((seg.labels >= 0) & (seg.labels < k))[included].all()  # labels in range
    assert (seg.labels[~included] == -1).all()  # excluded pixels are never labelled
    assert seg.fractions.sum() == pytest.approx(1.0)
    assert seg.counts.sum() == included.sum()
    recoloured = seg.recolor()[included]
    palette = {tuple(c) for c in seg.palette.tolist()}
    assert {tuple(c) for c in recoloured.tolist()} <= palette  # only palette colours
    again = segment(image, k, color_space=space, random_state=seed)
    np.testing.assert_array_equal(seg.labels, again.labels)  # same seed, same result
    np.testing.assert_array_equal(seg.palette, again.palette)


def test_recolor_beyond_65535_clusters():
    """A uint32 label map is recoloured through the int32 labels, not a table of 2**32 rows."""
    from imgclust.pixels.segment import Segmentation

    k = 70_000
    label_map = np.array([[0, 1], [np.iinfo(np.uint32).max, k - 1]], dtype=np.uint32)
    palette = np.zeros((k, 3), dtype=np.uint8)
    palette[1], palette[k - 1] = (9, 9, 9), (5, 6, 7)
    counts = np.zeros(k, dtype=np.int64)
    counts[[0, 1, k - 1]] = 1
    seg = Segmentation(
        label_map, palette, counts, np.zeros((k, 3)), 0.0, 1, "rgb", 0, "sample", None
    )
    assert seg.recolor(fill=(1, 2, 3)).tolist() == [[[0, 0, 0], [9, 9, 9]], [[1, 2, 3], [5, 6, 7]]]
    assert seg.labels.tolist() == [[0, 1], [-1, k - 1]]


def _noisy_halves(seed: int, shape=(90, 120)) -> tuple[np.ndarray, np.ndarray]:
    """Two grey halves whose pixel colours overlap (noise larger than half their gap): the
    image and which half each pixel is in."""
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, dtype=int)
    truth[:, shape[1] // 2 :] = 1
    grey = np.where(truth == 1, 150.0, 100.0) + rng.normal(0, 30, shape)
    image = np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    return image, truth


def _agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    same = float(np.mean(labels == truth))
    return max(same, 1 - same)


@pytest.mark.parametrize("seed", range(3))
def test_superpixels_give_region_coherent_segments(seed):
    image, truth = _noisy_halves(seed)
    by_superpixel = segment(  # noise this strong needs squarer superpixels than the default
        image, 2, superpixels=60, compactness=30, superpixel_side=None, random_state=seed
    )
    by_pixel = segment(image, 2, random_state=seed)
    assert _agreement(by_superpixel.labels, truth) > 0.95
    assert _agreement(by_pixel.labels, truth) < 0.85  # the noise splits pixels at random
    assert by_superpixel.method == "superpixels" and by_superpixel.n_fit >= 20


def test_superpixel_segmentation_facts(photo):
    seg = segment(photo, 4, superpixels=80, random_state=0)
    superpixels = seg.superpixel_map
    # every superpixel takes one cluster
    for s in np.unique(superpixels):
        assert np.unique(seg.labels[superpixels == s]).size == 1
    assert seg.n_fit == superpixels.max() + 1
    # inertia is on every pixel, palette the mean colour of each cluster's pixels
    features = rgb_to_features(photo.reshape(-1, 3), "lab")
    distances = ((features - seg.centers[seg.labels.reshape(-1)]) ** 2).sum()
    assert seg.inertia == pytest.approx(distances, rel=1e-9)
    for k in range(4):
        members = photo.reshape(-1, 3)[seg.labels.reshape(-1) == k]
        np.testing.assert_allclose(seg.palette[k], members.mean(axis=0), atol=0.51)
        assert seg.counts[k] == len(members)
    # the same seed, the same segmentation
    again = segment(photo, 4, superpixels=80, random_state=0)
    np.testing.assert_array_equal(seg.label_map, again.label_map)


def test_superpixels_on_a_reduced_image_and_with_a_mask(photo):
    mask = np.ones(photo.shape[:2], dtype=bool)
    mask[:, :40] = False
    seg = segment(photo, 3, superpixels=50, superpixel_side=32, mask=mask, random_state=0)
    assert seg.label_map.shape == photo.shape[:2]
    assert (seg.labels[:, :40] == -1).all() and (seg.superpixel_map[:, :40] == -1).all()
    assert (seg.labels[:, 40:] >= 0).all() and seg.counts.sum() == mask.sum()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_clusters=2, superpixels=0), "superpixels=0 must be an integer >= 1"),
        (dict(n_clusters=2, superpixels=10, spatial=1.0), "do not combine"),
        (dict(n_clusters=2, superpixels=10, compactness=0), "compactness=0"),
        (dict(n_clusters=2, superpixels=10, superpixel_side=4), "superpixel_side=4"),
        (dict(n_clusters=2, epsilon=-1.0), "epsilon=-1.0 must be a finite number"),
    ],
)
def test_bad_superpixel_and_epsilon_parameters(photo, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        segment(photo, **kwargs)


def test_more_clusters_than_superpixels_is_refused(photo):
    with pytest.raises(InvalidParameterError, match="ask for more superpixels or a smaller K"):
        segment(photo, 12, superpixels=4, random_state=0)


def test_fit_summary_says_what_ran(photo):
    from skimage import data

    large = data.astronaut()  # more distinct colours than the restarts run on
    seg = segment(large, 6, n_init=5, random_state=0)
    assert seg.n_fit == np.unique(large.reshape(-1, 3), axis=0).shape[0]
    assert seg.summary_size > 0 and seg.summary_iter >= 1 and seg.n_iter >= 1
    text = seg.fit_summary
    assert text.startswith("5 restarts on a summary of")
    assert f"{seg.summary_iter} iterations" in text and f"{seg.n_fit:,} distinct colours" in text
    small = segment(photo[:20, :20], 3, n_init=2, random_state=0)  # few colours: no summary
    assert small.summary_size == 0
    assert small.fit_summary.startswith("2 restarts on all")


def test_epsilon_is_opencv_s_absolute_rule(photo):
    """A large --tol (relative) stops early; the same number as epsilon (absolute, in Lab
    units) lets k-means run on, as in OpenCV."""
    relative = segment(photo, 8, tol=0.2, random_state=0)
    absolute = segment(photo, 8, epsilon=0.2, random_state=0)
    assert relative.summary_size == absolute.summary_size == 0  # n_iter: the best restart's
    assert absolute.n_iter > relative.n_iter
    assert absolute.inertia < relative.inertia
    assert absolute.params["epsilon"] == 0.2
