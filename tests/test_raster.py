"""Raster classification and evaluation on small GeoTIFFs written here with planted classes."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio", reason="the raster extra (rasterio) is not installed")

from click.testing import CliRunner  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from imgclust._progress import no_progress  # noqa: E402
from imgclust.cli import cli  # noqa: E402
from imgclust.cluster.evaluation import adjusted_rand_from_table, nmi_from_table  # noqa: E402
from imgclust.errors import ImageReadError, InvalidParameterError, OutputExistsError  # noqa: E402
from imgclust.raster import classify, evaluate_classes  # noqa: E402
from imgclust.raster.classify import classify_raster  # noqa: E402
from imgclust.raster.features import parse_index  # noqa: E402
from imgclust.raster.sampling import PixelSampler  # noqa: E402

CRS_UTM = CRS.from_epsg(32630)
TRANSFORM = from_origin(500_000, 4_200_000, 10, 10)  # 10 m pixels: 100 m2 each
# Four land covers with distinct spectra in four bands (blue, green, red, nir), uint16.
SPECTRA = np.array(
    [
        [300, 500, 400, 200],  # water: dark, low nir
        [400, 700, 500, 3000],  # vegetation: high nir
        [1500, 1600, 1700, 2000],  # bare soil: bright
        [3000, 3100, 3200, 3300],  # cloud: brightest
    ],
    dtype=np.uint16,
)
NODATA = 0


def _planted(height=60, width=80, seed=0):
    """Quadrant classes 0..3, small noise, and a nodata block in the corner."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((height, width), dtype=np.int32)
    truth[: height // 2, width // 2 :] = 1
    truth[height // 2 :, : width // 2] = 2
    truth[height // 2 :, width // 2 :] = 3
    bands = SPECTRA[truth].transpose(2, 0, 1).astype(np.int32)
    bands = bands + rng.integers(-20, 21, size=bands.shape)
    nodata = np.zeros((height, width), dtype=bool)
    nodata[:7, :9] = True
    bands[:, nodata] = NODATA
    return bands.astype(np.uint16), truth, nodata


def _write(path, bands, nodata=NODATA, crs=CRS_UTM, transform=TRANSFORM, **extra):
    profile = {
        "driver": "GTiff",
        "width": bands.shape[2],
        "height": bands.shape[1],
        "count": bands.shape[0],
        "dtype": str(bands.dtype),
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        **extra,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
    return path


@pytest.fixture
def scene(tmp_path):
    bands, truth, nodata = _planted()
    return _write(tmp_path / "scene.tif", bands), truth, nodata


def _codes(folder):
    with rasterio.open(folder / "classes.tif") as src:
        return src.read(1), src.profile, src.colormap(1), src.nodata


def test_planted_classes_are_recovered_exactly_and_ordered_dark_first(tmp_path, scene):
    path, truth, nodata = scene
    result = classify_raster(path, tmp_path / "out", 4, random_state=0)
    codes, profile, colormap, declared_nodata = _codes(tmp_path / "out")
    assert (codes[nodata] == 0).all() and (codes[~nodata] > 0).all()
    # planted class i (ordered by brightness: water, vegetation, soil, cloud) -> code i + 1
    np.testing.assert_array_equal(codes[~nodata], truth[~nodata] + 1)
    assert declared_nodata == 0 and profile["dtype"] == "uint8"
    assert profile["crs"] == CRS_UTM and profile["transform"] == TRANSFORM
    assert (profile["width"], profile["height"]) == (80, 60)
    colours = result.summary["classes"]
    for c in colours:
        assert colormap[c["code"]][:3] == tuple(int(c["color"][i : i + 2], 16) for i in (1, 3, 5))
    assert colormap[0][3] == 0  # nodata transparent


def test_statistics_add_up(tmp_path, scene):
    path, truth, nodata = scene
    summary = classify_raster(path, tmp_path / "out", 4, random_state=0).summary
    valid = int((~nodata).sum())
    assert summary["valid_pixels"] == valid and summary["nodata_pixels"] == int(nodata.sum())
    assert sum(c["pixels"] for c in summary["classes"]) == valid
    assert sum(c["fraction"] for c in summary["classes"]) == pytest.approx(1.0)
    with rasterio.open(path) as src:
        data = src.read()
    for c in summary["classes"]:
        planted = (truth == c["code"] - 1) & ~nodata
        assert c["pixels"] == planted.sum()
        assert c["area"] == pytest.approx(planted.sum() * 100.0)
        assert c["hectares"] == pytest.approx(planted.sum() * 100.0 / 10_000)
        assert c["area_unit"] == "m2"
        values = data[2][planted].astype(np.float64)
        assert c["mean"]["band 3"] == pytest.approx(values.mean(), rel=1e-9)
        assert c["std"]["band 3"] == pytest.approx(values.std(), rel=1e-6)
    rows = list(csv.DictReader((tmp_path / "out" / "classes.csv").read_text().splitlines()))
    assert [int(r["pixels"]) for r in rows] == [c["pixels"] for c in summary["classes"]]
    on_disk = json.loads((tmp_path / "out" / "classes.json").read_text())
    assert on_disk["classes"] == summary["classes"]


def test_windowed_and_in_memory_runs_give_identical_output(tmp_path, scene, monkeypatch):
    path, _, _ = scene
    classify_raster(path, tmp_path / "whole", 4, random_state=3, sample_size=500)
    monkeypatch.setattr(classify, "DEFAULT_BLOCK_PIXELS", 80 * 7)  # strips of 7 rows
    windowed = classify_raster(path, tmp_path / "strips", 4, random_state=3, sample_size=500)
    a, b = _codes(tmp_path / "whole")[0], _codes(tmp_path / "strips")[0]
    np.testing.assert_array_equal(a, b)
    whole = json.loads((tmp_path / "whole" / "model.json").read_text())
    strips = json.loads((tmp_path / "strips" / "model.json").read_text())
    assert whole["centers"] == strips["centers"]
    assert windowed.summary["valid_pixels"] == int((a > 0).sum())


@pytest.mark.parametrize(
    ("width", "rows"),
    [(80, 52_224), (3_000, 1_024), (10_659, 512), (16_000, 512), (20_000, 209)],
)
def test_strips_follow_whole_rows_of_output_tiles(tmp_path, width, rows):
    from imgclust.raster.stack import BandStack

    path = tmp_path / "wide.tif"
    profile = {"driver": "GTiff", "width": width, "height": 1_100, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", crs=CRS_UTM, transform=TRANSFORM, **profile):
        pass  # an empty, sparse file: only its size matters here
    with BandStack(path) as stack:
        strips = stack.windows(4 << 20)
    assert strips[0] == (0, min(rows, 1_100))
    assert sum(n for _, n in strips) == 1_100
    assert all(start == i * strips[0][1] for i, (start, _) in enumerate(strips))


@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_strip_kernel_matches_a_pixel_by_pixel_reference(dtype):
    """The row-wise SIMD kernel gives the codes and sums of the sample's own float32 feature
    arithmetic, pixel by pixel (test_native checks the compiled kernel against the JIT one)."""
    from imgclust import _native

    rng = np.random.default_rng(5)
    bands, h, w, k, lanes = 4, 37, 53, 5, 4
    data = (rng.random((bands, h, w)) * 5000).astype(dtype)
    valid = rng.random((h, w)) > 0.1
    if dtype == "float32":
        data[:, 3, 7] = np.nan  # an invalid pixel may hold anything
        valid[3, 7] = False
    index_a, index_b = np.array([3]), np.array([2])  # one normalised difference
    values = data.astype(np.float32)
    a, b = values[3], values[2]
    index = np.where(a + b != 0, (a - b) / (a + b), np.float32(0))
    raw = np.concatenate([values, index[None]])  # float32, as FeatureSpec.raw_features
    mean = np.nanmean(raw.reshape(bands + 1, -1), axis=1).astype(np.float64)
    scale = np.nanstd(raw.reshape(bands + 1, -1), axis=1).astype(np.float64)
    centers = rng.normal(size=(k, bands + 1)).astype(np.float32)
    codes = np.empty((h, w), dtype=np.uint8)
    sums, squares = np.zeros((lanes, k + 1, bands + 1)), np.zeros((lanes, k + 1, bands + 1))
    counts = np.zeros((lanes, k + 1), dtype=np.int64)
    arguments = (data, valid, bands, index_a, index_b, mean, scale, centers, codes, sums)
    arguments += (squares, counts)
    _native.call("classify_strip", *arguments)

    centred = raw - mean.astype(np.float32)[:, None, None]  # float32, as FeatureSpec.transform
    scaled = centred / scale.astype(np.float32)[:, None, None]
    distances = np.zeros((k, h, w), dtype=np.float32)
    for f in range(bands + 1):  # float32 sums in feature order, as the kernel adds them
        distances += (scaled[f][None] - centers[:, f, None, None]) ** 2
    expected = np.where(valid, distances.argmin(axis=0) + 1, 0)
    assert len(np.unique(expected)) == k + 1  # every class and nodata occur
    assert np.array_equal(codes, expected)
    assert counts.sum(axis=0).tolist() == np.bincount(expected.ravel(), minlength=k + 1).tolist()
    members = centred[:, valid].astype(np.float64)
    for code in range(1, k + 1):
        chosen = members[:, expected[valid] == code]
        np.testing.assert_allclose(sums.sum(axis=0)[code], chosen.sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(squares.sum(axis=0)[code], (chosen**2).sum(axis=1), rtol=1e-12)


def test_sample_does_not_depend_on_the_windows():
    rng = np.random.default_rng(0)
    data = rng.random((2, 50, 40)).astype(np.float32)
    valid = rng.random((50, 40)) > 0.3
    whole = PixelSampler(100, 40, seed=5)
    whole.add(0, data, valid)
    parts = PixelSampler(100, 40, seed=5)
    for row in range(0, 50, 3):
        parts.add(row, data[:, row : row + 3], valid[row : row + 3])
    (p1, v1), (p2, v2) = whole.result(), parts.result()
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(v1, v2)
    assert p1.size == 100 and valid.reshape(-1)[p1].all()
    other = PixelSampler(100, 40, seed=6)
    other.add(0, data, valid)
    assert not np.array_equal(other.result()[0], p1)


def test_model_applied_to_a_second_scene_gives_the_same_classes(tmp_path, scene):
    path, _, _ = scene
    classify_raster(path, tmp_path / "first", 4, random_state=0)
    bands, truth, nodata = _planted(seed=1)  # same land covers, other noise
    second = _write(tmp_path / "second.tif", bands)
    result = classify_raster(second, tmp_path / "second", model=tmp_path / "first" / "model.json")
    codes = _codes(tmp_path / "second")[0]
    np.testing.assert_array_equal(codes[~nodata], truth[~nodata] + 1)
    assert result.summary["model_applied"] is True


def test_one_file_per_band_equals_one_multiband_file(tmp_path, scene):
    path, _, _ = scene
    with rasterio.open(path) as src:
        data = src.read()
    singles = [_write(tmp_path / f"B{i + 1}.tif", data[i : i + 1]) for i in range(4)]
    classify_raster(path, tmp_path / "multi", 4, random_state=0)
    result = classify_raster(singles, tmp_path / "single", 4, random_state=0)
    np.testing.assert_array_equal(_codes(tmp_path / "multi")[0], _codes(tmp_path / "single")[0])
    assert result.summary["features"] == ["B1", "B2", "B3", "B4"]


def test_band_selection_index_and_float_nan_nodata(tmp_path):
    bands, truth, nodata = _planted()
    floats = (bands / 10_000).astype(np.float32)
    floats[:, nodata] = np.nan
    path = _write(tmp_path / "f.tif", floats, nodata=None)
    result = classify_raster(
        path, tmp_path / "o", 4, bands="4,3", indices=["ndvi:nir=4,red=3"], random_state=0
    )
    codes = _codes(tmp_path / "o")[0]
    assert (codes[nodata] == 0).all()
    assert result.summary["features"] == ["band 4", "band 3", "NDVI"]
    # vegetation (planted 1) has the highest NDVI
    ndvi = {c["code"]: c["mean"]["NDVI"] for c in result.summary["classes"]}
    vegetation_code = int(np.bincount(codes[truth == 1]).argmax())
    assert max(ndvi, key=ndvi.get) == vegetation_code


def test_a_pixel_missing_in_any_band_and_nodata_override(tmp_path):
    bands, _, _ = _planted()
    bands[2, 30, 40] = 65535
    path = _write(tmp_path / "s.tif", bands, nodata=None)
    result = classify_raster(path, tmp_path / "o", 4, nodata=65535, random_state=0)
    codes = _codes(tmp_path / "o")[0]
    assert codes[30, 40] == 0
    assert result.summary["nodata_pixels"] == 1 + 0  # the planted block is 0, not nodata here


def test_dataset_mask_excludes_pixels(tmp_path):
    bands, _, _ = _planted()
    path = _write(tmp_path / "m.tif", bands, nodata=None)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
        mask = np.full((60, 80), 255, dtype=np.uint8)
        mask[-5:, -5:] = 0
        dst.write_mask(mask)
    classify_raster(path, tmp_path / "o", 4, random_state=0)
    codes = _codes(tmp_path / "o")[0]
    assert (codes[-5:, -5:] == 0).all() and (codes[:-5] > 0).all()


def test_outputs_and_colours(tmp_path, scene):
    path, _, _ = scene
    result = classify_raster(
        path, tmp_path / "o", 4, colors="#B90E0A,navy,green,#E1AD01", random_state=0
    )
    assert result.files == [
        "classes.csv",
        "classes.json",
        "classes.png",
        "classes.qml",
        "classes.tif",
        "classes.tif.aux.xml",
        "model.json",
        "quicklook.png",
        "report.html",
    ]
    colormap = _codes(tmp_path / "o")[2]
    assert colormap[1][:3] == (0xB9, 0x0E, 0x0A) and colormap[2][:3] == (0, 0, 128)
    from PIL import Image

    quicklook = np.asarray(Image.open(tmp_path / "o" / "quicklook.png"))
    assert quicklook.shape == (60, 80, 4) and (quicklook[:7, :9, 3] == 0).all()
    assert quicklook[..., :3].max() == 255 and quicklook[10:, 10:, :3].min() == 0


def test_quicklook_has_an_alpha_band_only_where_there_is_nodata():
    from imgclust.report.raster_plots import quicklook

    bands = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
    valid = np.ones((20, 30), dtype=bool)
    assert quicklook(bands, valid).mode == "RGB"
    valid[:5, :5] = False
    picture = np.asarray(quicklook(bands, valid))
    assert picture.shape == (20, 30, 4)
    assert (picture[:5, :5, 3] == 0).all() and (picture[5:, :, 3] == 255).all()


def test_uint16_codes_past_255_classes(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.permutation(300 * 40).reshape(1, 40, 300).astype(np.uint16) + 1
    path = _write(tmp_path / "many.tif", values)
    classify_raster(path, tmp_path / "o", 260, random_state=0, n_init=1)
    codes, profile, _, _ = _codes(tmp_path / "o")
    assert profile["dtype"] == "uint16" and codes.max() == 260 and codes.min() >= 1


def test_jp2_round_trip(tmp_path, scene):
    if "JP2OpenJPEG" not in rasterio.drivers.raster_driver_extensions().values():
        pytest.skip("this GDAL has no JP2OpenJPEG driver")
    _, truth, nodata = scene
    bands, _, _ = _planted()
    path = _write(tmp_path / "scene.jp2", bands, driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE=True)
    classify_raster(path, tmp_path / "o", 4, random_state=0)
    codes = _codes(tmp_path / "o")[0]
    np.testing.assert_array_equal(codes[~nodata], truth[~nodata] + 1)


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (lambda p: {"sources": [p, _other_grid(p)]}, InvalidParameterError, "different extents"),
        (lambda p: {"sources": [p, _other_crs(p)]}, InvalidParameterError, "share one CRS"),
        (lambda p: {"sources": p, "bands": "5"}, InvalidParameterError, "out of range"),
        (lambda p: {"sources": p, "n_clusters": 10**6}, InvalidParameterError, "larger than"),
        (
            lambda p: {"sources": p, "nodata": None, "bands": "1", "n_clusters": 5000},
            InvalidParameterError,
            "larger than",
        ),
        (lambda p: {"sources": _not_raster(p)}, ImageReadError, "cannot be read as a raster"),
        (lambda p: {"sources": _all_nodata(p)}, InvalidParameterError, "all nodata"),
    ],
)
def test_bad_input_gives_clear_errors_and_writes_nothing(tmp_path, scene, setup, error, match):
    path, _, _ = scene
    kwargs = {"n_clusters": 4, **setup(path)}
    with pytest.raises(error, match=match):
        classify_raster(output=tmp_path / "o", **kwargs)
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


def _other_grid(path):
    return _write(path.parent / "small.tif", np.ones((1, 10, 10), np.uint16))


def _other_crs(path):
    return _write(path.parent / "wgs.tif", np.ones((1, 60, 80), np.uint16), crs=CRS.from_epsg(4326))


def _not_raster(path):
    bad = path.parent / "notes.tif"
    bad.write_text("not a raster")
    return bad


def _all_nodata(path):
    return _write(path.parent / "empty.tif", np.zeros((2, 20, 20), np.uint16))


def test_existing_output_is_refused(tmp_path, scene):
    path, _, _ = scene
    classify_raster(path, tmp_path / "o", 4)
    with pytest.raises(OutputExistsError):
        classify_raster(path, tmp_path / "o", 4)
    classify_raster(path, tmp_path / "o", 3, overwrite=True)
    assert _codes(tmp_path / "o")[0].max() == 3


def test_index_parsing():
    index = parse_index("ndvi:nir=8,red=4")
    assert (index.name, index.a, index.b) == ("ndvi", 8, 4)
    with pytest.raises(InvalidParameterError, match="ndwi:green=N,nir=M"):
        parse_index("ndwi")
    with pytest.raises(InvalidParameterError, match="unknown index"):
        parse_index("evi:nir=1")


# -- evaluation ----------------------------------------------------------------------------


def test_scores_from_the_table_match_scikit_learn():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix

    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 4, 500), rng.integers(0, 6, 500)
    b[:250] = a[:250]
    table = contingency_matrix(a, b)
    assert adjusted_rand_from_table(table) == pytest.approx(adjusted_rand_score(a, b))
    assert nmi_from_table(table) == pytest.approx(normalized_mutual_info_score(a, b))


def test_evaluate_against_a_reference(tmp_path, scene):
    path, truth, nodata = scene
    classify_raster(path, tmp_path / "c", 4, random_state=0)
    reference = np.where(nodata, 255, (truth + 1) * 10).astype(np.uint8)  # labels 10..40
    reference[0, -1] = 255  # one more reference nodata pixel
    reference[-1, -1] = 20  # one wrong pixel (truth 3 -> 40)
    ref_path = _write(tmp_path / "ref.tif", reference[None], nodata=255)
    result = evaluate_classes(tmp_path / "c" / "classes.tif", ref_path, tmp_path / "e")
    s = result.summary
    compared = int((~nodata).sum()) - 1
    assert s["pixels"] == compared
    assert s["majority_mapping"] == {"1": 10, "2": 20, "3": 30, "4": 40}
    assert s["one_to_one_mapping"] == {"1": 10, "2": 20, "3": 30, "4": 40}
    assert s["accuracy_majority"] == pytest.approx((compared - 1) / compared)
    assert s["accuracy_one_to_one"] == pytest.approx((compared - 1) / compared)
    assert 0.99 < s["adjusted_rand_index"] < 1 and 0.99 < s["normalized_mutual_info"] < 1
    rows = list(csv.reader((tmp_path / "e" / "confusion.csv").read_text().splitlines()))
    assert rows[0][1:] == ["1", "2", "3", "4"] and [r[0] for r in rows[1:]] == [
        "10",
        "20",
        "30",
        "40",
    ]
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == compared
    assert (tmp_path / "e" / "confusion.png").stat().st_size > 0


def test_majority_and_hungarian_differ_when_two_classes_share_a_label(tmp_path):
    classes = np.array([[1, 1, 2, 2, 3, 3]], dtype=np.uint8)
    reference = np.array([[5, 5, 5, 5, 7, 7]], dtype=np.uint8)
    a = _write(tmp_path / "a.tif", classes[None], nodata=0)
    b = _write(tmp_path / "b.tif", reference[None], nodata=0)
    s = evaluate_classes(a, b, tmp_path / "e").summary
    assert s["majority_mapping"] == {"1": 5, "2": 5, "3": 7} and s["accuracy_majority"] == 1.0
    assert s["accuracy_one_to_one"] == pytest.approx(4 / 6)


def test_evaluate_refuses_another_grid(tmp_path, scene):
    path, _, _ = scene
    other = _write(tmp_path / "small.tif", np.ones((1, 10, 10), np.uint8))
    with pytest.raises(InvalidParameterError, match="same grid"):
        evaluate_classes(path, other, tmp_path / "e")
    assert not (tmp_path / "e").exists()


# -- command line --------------------------------------------------------------------------


def test_cli_classify_and_evaluate(tmp_path, scene):
    path = scene[0]
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        cli, ["classify", str(path), "-k", "4", "--rgb", "3,2,1", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_classes"] == 4 and (out / "classes.tif").is_file()
    again = runner.invoke(
        cli, ["classify", str(path), "--model", str(out / "model.json"), "-o", str(tmp_path / "b")]
    )
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(_codes(out)[0], _codes(tmp_path / "b")[0])
    conflict = runner.invoke(
        cli, ["classify", str(path), "--model", str(out / "model.json"), "-k", "3"]
    )
    assert conflict.exit_code == 2 and "drop -k" in conflict.output
    evaluated = runner.invoke(
        cli,
        [
            "evaluate",
            str(out / "classes.tif"),
            str(out / "classes.tif"),
            "-o",
            str(tmp_path / "e"),
            "--json",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["accuracy_one_to_one"] == 1.0


def test_cli_bad_input_is_one_line(tmp_path, scene):
    path, _, _ = scene
    result = CliRunner().invoke(
        cli, ["classify", str(path), "--bands", "9", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: band 9 is out of range: the stack has 4 bands (1-4)"
    ]
    assert "Traceback" not in result.output


def test_mostly_nodata_scene_still_gets_the_full_sample(tmp_path):
    bands, _, _ = _planted()
    bands[:, :, 8:] = NODATA  # 90% of the scene is nodata
    path = _write(tmp_path / "sparse.tif", bands)
    result = classify_raster(path, tmp_path / "o", 2, sample_size=300, random_state=0)
    assert result.model.sample_size == 300
    assert result.summary["valid_pixels"] == 60 * 8 - 7 * 8  # less the planted corner


def _tiled_scene(tmp_path, nodata_share=0.0):
    """A 320x320 scene in 32x32 deflate tiles (100 tiles), planted quadrants; optionally the
    left part nodata."""
    bands, _, _ = _planted(height=320, width=320, seed=4)
    bands[:, :, : int(320 * nodata_share)] = NODATA
    tiles = {"tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate"}
    return _write(tmp_path / "tiled.tif", bands, **tiles), bands


def _windows_read(monkeypatch, path, size, seed=0):
    """The sample ``_draw_sample`` draws from the 32x32 tiles of ``path``, and the windows
    it read."""
    from imgclust.raster.stack import BandStack

    monkeypatch.setattr(classify, "SAMPLE_WINDOW_PIXELS", 32 * 32)
    read = []
    original = BandStack.read

    def recording(self, bands, row=0, n_rows=None, col=0, n_cols=None, **kwargs):
        read.append((row, col, n_rows, n_cols))
        return original(self, bands, row, n_rows, col, n_cols, **kwargs)

    monkeypatch.setattr(BandStack, "read", recording)
    with BandStack(path) as stack:
        spec = classify._feature_spec(stack, None, (), "standard")
        values, n_valid, _kept = classify._draw_sample(stack, spec, size, seed, no_progress)
    return values, n_valid, read


def test_sample_reads_a_seeded_spread_of_whole_tiles(tmp_path, monkeypatch):
    path, bands = _tiled_scene(tmp_path)
    values, n_valid, read = _windows_read(monkeypatch, path, size=500)
    assert len(read) == len(set(read)) == 13  # an eighth of the 100 tiles, each read once
    assert all(r % 32 == 0 and c % 32 == 0 and h == w == 32 for r, c, h, w in read)
    # one tile from each run of consecutive tiles: spread from the top to the bottom
    order = sorted(r // 32 * 10 + c // 32 for r, c, _, _ in read)
    assert order[0] < 100 / 13 and order[-1] >= 100 - 100 / 13
    assert all(b - a < 2 * 100 / 13 for a, b in itertools.pairwise(order))
    # the sample: the 500 valid pixels of those tiles with the smallest keys
    reference = PixelSampler(500, 320, seed=0)
    valid = bands[0] != NODATA
    for r, c, h, w in read:
        window = (slice(r, r + h), slice(c, c + w))
        reference.add(r, bands[:, window[0], window[1]], valid[window], c)
    np.testing.assert_array_equal(values, reference.result()[1])
    assert n_valid == int(sum(valid[r : r + h, c : c + w].sum() for r, c, h, w in read))
    _other, _, other_read = _windows_read(monkeypatch, path, size=500, seed=1)
    assert sorted(other_read) != sorted(read)


def test_sample_of_a_mostly_nodata_scene_reads_more_tiles(tmp_path, monkeypatch):
    path, _bands = _tiled_scene(tmp_path, nodata_share=0.9)
    values, n_valid, read = _windows_read(monkeypatch, path, size=1_500)
    assert values.shape == (1_500, 4)  # the full sample, from more than the first 13 tiles
    assert n_valid >= 2 * 1_500 and len(set(read)) > 13
    assert (values != NODATA).all()


def test_sample_of_a_small_scene_takes_every_valid_pixel_it_needs(tmp_path, monkeypatch):
    path, bands = _tiled_scene(tmp_path)
    values, n_valid, read = _windows_read(monkeypatch, path, size=60_000)
    assert len(set(read)) == 100 and n_valid == int((bands[0] != NODATA).sum())
    assert values.shape == (60_000, 4)


def test_reading_into_a_reused_buffer_gives_the_same_strip(tmp_path):
    """The classifying pass reads each strip into its thread's buffer, straight from GDAL when
    the bands are one file's and of one type, else through a copy."""
    from imgclust.raster.stack import BandStack

    bands, _, _ = _planted(seed=6)
    one_file = _write(tmp_path / "one.tif", bands)
    per_band = [_write(tmp_path / f"b{i}.tif", bands[i : i + 1]) for i in range(4)]
    for paths, order in ((one_file, [1, 2, 3, 4]), (one_file, [3, 1]), (per_band, [2, 4, 1])):
        with BandStack(paths) as stack:
            buffer = np.full(4 * 60 * 80, 7, dtype=np.uint16)
            for row, n_rows in ((0, 13), (13, 47)):
                plain = stack.read(order, row, n_rows, as_float=False)
                reused = stack.read(order, row, n_rows, as_float=False, buffer=buffer)
                np.testing.assert_array_equal(reused.data, plain.data)
                np.testing.assert_array_equal(reused.valid, plain.valid)
                assert np.shares_memory(reused.data, buffer)
                expected = bands[np.array(order) - 1, row : row + n_rows]
                np.testing.assert_array_equal(plain.data, expected)


def test_uncovered_rectangles_tile_what_the_boxes_leave():
    from imgclust.raster.stack import uncovered

    rng = np.random.default_rng(0)
    for _ in range(50):
        window = (10, 5, 40, 60)
        boxes, taken = [], np.zeros((40, 60), dtype=bool)
        for _ in range(rng.integers(0, 6)):
            r, c = rng.integers(0, 40), rng.integers(0, 60)
            h, w = rng.integers(1, 41 - r), rng.integers(1, 61 - c)
            if not taken[r : r + h, c : c + w].any():
                taken[r : r + h, c : c + w] = True
                boxes.append((r + 10, c + 5, h, w))
        cover = taken.astype(int)
        for r, c, h, w in uncovered(window, boxes):
            assert h > 0 and w > 0
            cover[r - 10 : r - 10 + h, c - 5 : c - 5 + w] += 1
        assert (cover == 1).all()  # every pixel once: in a box or in one rectangle


def test_reading_around_known_blocks_gives_the_same_strip(tmp_path):
    """The classifying pass takes the windows the sample read from memory and reads the rest
    of each strip; data and validity (nodata here) are those of a plain read."""
    from imgclust.raster.stack import BandStack

    path, _bands = _tiled_scene(tmp_path, nodata_share=0.3)
    with BandStack(path) as stack:
        plain = stack.read([1, 2, 3, 4], 64, 96, as_float=False)
        known = [
            stack.read([1, 2, 3, 4], r, 32, c, 32, as_float=False)
            for r, c in ((64, 0), (64, 96), (96, 32), (128, 288))
        ]
        buffer = np.zeros(4 * 96 * 320, dtype=np.uint16)
        around = stack.read([1, 2, 3, 4], 64, 96, as_float=False, buffer=buffer, known=known)
        np.testing.assert_array_equal(around.data, plain.data)
        np.testing.assert_array_equal(around.valid, plain.valid)
        assert not plain.valid.all() and plain.valid.any()
        with pytest.raises(ValueError, match="inside the window"):
            stack.read([1, 2, 3, 4], 0, 32, as_float=False, known=known)


def test_windows_kept_from_the_sample_change_nothing_but_what_is_read(tmp_path, monkeypatch):
    from imgclust.raster.stack import BandStack

    path, _bands = _tiled_scene(tmp_path, nodata_share=0.2)
    monkeypatch.setattr(classify, "SAMPLE_WINDOW_PIXELS", 32 * 32)
    monkeypatch.setattr(classify, "DEFAULT_BLOCK_PIXELS", 320 * 64)  # strips of 64 rows
    read = []
    original = BandStack._read_into

    def counting(self, bands, data, valid, window):
        read.append(int(window.width * window.height))
        return original(self, bands, data, valid, window)

    monkeypatch.setattr(BandStack, "_read_into", counting)
    outputs = {}
    for budget in (classify.KEPT_WINDOW_BYTES, 0):
        monkeypatch.setattr(classify, "KEPT_WINDOW_BYTES", budget)
        read.clear()
        result = classify_raster(path, tmp_path / str(budget), 3, sample_size=2_000)
        outputs[budget] = (_codes(tmp_path / str(budget))[0], result.summary, sum(read))
    (kept_codes, kept_summary, kept_read), (codes, summary, plain_read) = outputs.values()
    np.testing.assert_array_equal(kept_codes, codes)
    assert kept_summary["classes"] == summary["classes"]
    # each run samples 13 of the 100 tiles; with them kept, the pass reads the other 87
    assert plain_read == 320 * 320 + 13 * 32 * 32
    assert kept_read == 320 * 320


def test_default_colours_are_matplotlibs_tab10_and_tab20():
    from matplotlib import colormaps

    from imgclust.raster.model import default_colors

    for n, name in ((10, "tab10"), (20, "tab20")):
        expected = [tuple(round(255 * c) for c in rgb) for rgb in colormaps[name].colors]
        assert default_colors(n) == expected
    assert len(set(default_colors(25))) == 25  # turbo past twenty


def test_capped_sampler_reports_when_it_is_incomplete():
    valid = np.zeros((50, 40), dtype=bool)
    valid[:, :2] = True  # 100 valid pixels of 2000
    data = np.ones((1, 50, 40), dtype=np.float32)
    capped = PixelSampler(50, 40, seed=0, n_pixels=2000)
    capped.add(0, data, valid)
    assert not capped.complete
    full = PixelSampler(50, 40, seed=0)
    full.add(0, data, valid)
    assert full.complete and full.result()[0].size == 50


HOSTILE = "<img src=x onerror=alert(1)>.tif"


def test_classify_and_evaluate_reports_in_headless_chromium(tmp_path, report_browser):
    bands, truth, nodata = _planted()
    path = _write(tmp_path / HOSTILE, bands)
    reference = np.where(nodata, 255, truth + 1).astype(np.uint8)
    ref_path = _write(tmp_path / "<svg onload=alert(2)>.tif", reference[None], nodata=255)
    runner = CliRunner()
    for args in (
        ["classify", str(path), "-k", "4", "-o", str(tmp_path / "c"), "-q"],
        ["evaluate", str(tmp_path / "c" / "classes.tif"), str(ref_path), "-o",
         str(tmp_path / "e"), "-q"],
    ):  # fmt: skip
        assert runner.invoke(cli, args).exit_code == 0
    classes = json.loads((tmp_path / "c" / "classes.json").read_text())["classes"]
    page_text = (tmp_path / "c" / "report.html").read_text()
    for entry in classes:  # every class with its colour and its area in hectares
        assert f'style="background:{entry["color"]}"' in page_text
        assert f"{entry['hectares']:,.1f} ha" in page_text
    with report_browser.open(
        tmp_path / "c" / "report.html", "classify-report.png", min_images=2
    ) as page:
        assert HOSTILE in page.inner_text("header")
        rows = page.locator("table.sortable").first.locator("tbody tr").count()
        assert rows == 4
    with report_browser.open(
        tmp_path / "c" / "report.html", "classify-report-1280.png", width=1280, min_images=2
    ) as page:  # the scene and its classes are drawn large on a desktop, not as thumbnails
        for name in ("quicklook.png", "classes.png"):
            shown, natural = page.evaluate(
                f"() => {{ const i = document.querySelector('img[src=\"{name}\"]');"
                " return [i.getBoundingClientRect().width, i.naturalWidth]; }"
            )
            assert shown >= 0.9 * min(natural, 440), (name, shown, natural)
    with report_browser.open(tmp_path / "e" / "report.html", "evaluate-report.png") as page:
        facts = page.inner_text(".facts")
        assert "accuracy (majority)\n1.000" in facts
        assert "<svg onload=alert(2)>.tif" in page.inner_text("header")


def test_raster_commands_skip_the_report_when_told(tmp_path, scene):
    path, _, _ = scene
    result = CliRunner().invoke(
        cli, ["classify", str(path), "-k", "4", "--no-report", "-o", str(tmp_path / "c"), "-q"]
    )
    assert result.exit_code == 0
    assert (tmp_path / "c" / "classes.tif").exists() and not (
        tmp_path / "c" / "report.html"
    ).exists()


def _in_a_terminal(args, tmp_path):
    """Run ``imgclust args`` with stderr on a pseudo-terminal: (exit code, stdout, terminal)."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "imgclust", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=tmp_path,
        env=env,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    stdout = process.stdout.read().decode()
    os.close(leader)
    return process.wait(), stdout, seen.decode(errors="replace")


def test_classify_shows_a_bar_per_step_and_keeps_json_clean(scene, tmp_path):
    path, _, _ = scene
    code, stdout, terminal = _in_a_terminal(
        ["classify", path, "-k", 4, "-o", tmp_path / "out", "--json"], tmp_path
    )
    assert code == 0, terminal
    assert json.loads(stdout)["n_classes"] == 4  # stdout holds the JSON and nothing else
    for step in ("sampling valid pixels", "fitting 4 classes", "classifying", "writing outputs"):
        assert step in terminal
    code, stdout, terminal = _in_a_terminal(
        ["classify", path, "-k", 4, "-o", tmp_path / "quiet", "-q"], tmp_path
    )
    assert (code, stdout, terminal) == (0, "", "")
