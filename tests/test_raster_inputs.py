"""Rasters as people have them: a picture without georeferencing, bands at several
resolutions, Sentinel-2 products as downloaded (folder and zip, JP2 bands, the scene
classification), quality masks, the quicklook's bands, and class names in any script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

rasterio = pytest.importorskip("rasterio", reason="the raster extra (rasterio) is not installed")

from click.testing import CliRunner  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

from imgclust.cli import cli  # noqa: E402
from imgclust.raster.classify import classify_raster  # noqa: E402
from imgclust.raster.stack import parse_mask  # noqa: E402
from imgclust.report.fonts import font_for  # noqa: E402

UTM = CRS.from_epsg(32632)
ORIGIN = (300_000, 5_000_000)
# Four covers in six bands (B02, B03, B04, B08, B11, B12): water, forest, fields, town.
SPECTRA = np.array(
    [
        [800, 700, 500, 300, 150, 100],
        [400, 600, 350, 3500, 1500, 700],
        [900, 1100, 1200, 2500, 2600, 1900],
        [1600, 1600, 1700, 2000, 2400, 2300],
    ]
)


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _covers(side: int) -> np.ndarray:
    """Quadrants of covers 0..3 on a side x side grid."""
    truth = np.zeros((side, side), dtype=np.int64)
    half = side // 2
    truth[:half, half:], truth[half:, :half], truth[half:, half:] = 1, 2, 3
    return truth


def _band(truth: np.ndarray, band: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-25, 26, truth.shape)
    return (SPECTRA[truth, band] + noise).astype(np.uint16)


def _write(path: Path, data: np.ndarray, pixel: float, **profile) -> Path:
    data = data[None] if data.ndim == 2 else data
    driver = "JP2OpenJPEG" if path.suffix == ".jp2" else "GTiff"
    options = {"QUALITY": 100, "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {}
    with rasterio.open(
        path, "w", driver=driver, width=data.shape[2], height=data.shape[1],
        count=data.shape[0], dtype=str(data.dtype), crs=UTM,
        transform=from_origin(*ORIGIN, pixel, pixel), **options, **profile,
    ) as dst:  # fmt: skip
        dst.write(data)
    return path


def _codes(folder: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(folder / "classes.tif") as src:
        return src.read(1), src.profile


def _agrees(codes: np.ndarray, truth: np.ndarray) -> bool:
    """Each class is one cover: the codes are the truth up to a renumbering."""
    pairs = {(int(c), int(t)) for c, t in zip(codes.ravel(), truth.ravel(), strict=True) if c}
    return len(pairs) == len({c for c, _ in pairs}) == len({t for _, t in pairs})


# -- a picture without georeferencing -----------------------------------------------------------


@pytest.fixture
def picture(tmp_path) -> Path:
    image = Image.new("RGB", (120, 90), (40, 90, 200))
    draw = ImageDraw.Draw(image)
    draw.rectangle([60, 0, 119, 44], fill=(30, 160, 40))
    draw.rectangle([0, 45, 59, 89], fill=(200, 190, 150))
    path = tmp_path / "seville.jpg"
    image.save(path, quality=95)
    return path


def test_a_picture_gives_classes_without_georeferencing_and_no_warning(picture, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "imgclust", "classify", str(picture), "-k", "3", "-o", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no NotGeoreferencedWarning
    assert "not georeferenced" in done.stdout and "None" not in done.stdout
    assert " pixels" in done.stdout
    with rasterio.open(out / "classes.tif") as src:
        assert (src.width, src.height) == (120, 90) and src.crs is None
        assert src.transform.is_identity  # rasterio's answer when the file has none
        assert src.block_shapes[0] == (256, 256)  # tiled, small as it is
    info = subprocess.run(["gdalinfo", "-json", str(out / "classes.tif")], capture_output=True,
                          text=True, check=False) if shutil.which("gdalinfo") else None  # fmt: skip
    if info is not None:
        assert "geoTransform" not in json.loads(info.stdout)
    summary = json.loads((out / "classes.json").read_text())
    assert summary["georeferenced"] is False and summary["transform"] is None
    assert {c["area_unit"] for c in summary["classes"]} == {"pixels"}
    assert sum(c["area"] for c in summary["classes"]) == 120 * 90


# -- class names in any script ---------------------------------------------------------------


def _drawn(font, text: str) -> bytes:
    image = Image.new("L", (60, 30), 0)
    ImageDraw.Draw(image).text((5, 5), text, fill=255, font=font)
    return image.tobytes()


def test_the_legend_font_draws_accents_and_cyrillic():
    letters = "éèêëàçñøßœłžщжэюяЁЙ"
    drawing = font_for(["forêt", "Straße", "лес", letters], 15)
    assert drawing.missing == []
    shapes = {_drawn(drawing.font, c) for c in letters}
    assert len(shapes) == len(letters)  # every letter its own glyph, none a missing box
    assert _drawn(drawing.font, "\U0010fffd") not in shapes


def test_class_names_beyond_ascii_in_the_legend(tmp_path, picture):
    names = "eau,forêt,лес"
    result = classify_raster(picture, tmp_path / "out", 3, names=names, report=False)
    assert "warnings" not in result.summary
    assert [c["name"] for c in result.summary["classes"]] == names.split(",")
    cjk = classify_raster(picture, tmp_path / "cjk", 3, names="水,森林,田", report=False)
    # drawn with a system font where one has these characters; else said, never silent
    assert ("warnings" in cjk.summary) == bool(font_for(["水森林田"], 15).missing)


# -- bands of several resolutions, masks ----------------------------------------------------------


def test_bands_of_30_and_60_metres_classify_on_the_30_metre_grid(tmp_path):
    fine, coarse = _covers(40), _covers(20)
    a = _write(tmp_path / "b1_30m.tif", _band(fine, 0, 1), 30)
    b = _write(tmp_path / "b2_60m.tif", _band(coarse, 3, 2), 60)
    result = classify_raster([a, b], tmp_path / "out", 4, report=False)
    codes, profile = _codes(tmp_path / "out")
    assert codes.shape == (40, 40) and profile["transform"].a == 30
    assert profile["transform"] == from_origin(*ORIGIN, 30, 30)
    assert _agrees(codes, fine)
    assert result.summary["resolution"] == 30
    assert result.summary["resampling"] == {"b2_60m.tif": "cubic from 60 to 30"}
    model = json.loads((tmp_path / "out" / "model.json").read_text())
    assert model["reading"]["resampling"] == result.summary["resampling"]
    coarser = classify_raster([a, b], tmp_path / "coarse", 4, resolution=60, report=False)
    assert _codes(tmp_path / "coarse")[0].shape == (20, 20)
    assert coarser.summary["resampling"] == {"b1_30m.tif": "average from 30 to 60"}


def test_bands_of_other_extents_are_refused_in_one_line(tmp_path):
    a = _write(tmp_path / "a.tif", _band(_covers(40), 0, 1), 30)
    b = _write(tmp_path / "b.tif", _band(_covers(10), 0, 1), 60)  # half the extent
    result = _run("classify", a, b, "-k", 2, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "cover different extents" in result.output
    assert not (tmp_path / "out").exists()


def test_a_mask_by_values_and_by_bits_leaves_pixels_out(tmp_path):
    truth = _covers(40)
    scene = _write(tmp_path / "scene.tif", np.stack([_band(truth, b, b) for b in range(4)]), 10)
    qa = np.zeros((20, 20), dtype=np.uint16)  # a 20 m quality band
    qa[:5, :5] = 1 << 3  # cloud bit
    qa[15:, 15:] = 1 << 4  # shadow bit
    qa[10, 10] = 1 << 1  # another bit, not asked for
    qa_path = _write(tmp_path / "QA_PIXEL.tif", qa, 20)
    classify_raster(scene, tmp_path / "bits", 4, masks=[f"{qa_path}:bits=3,4"], report=False)
    codes, _ = _codes(tmp_path / "bits")
    assert (codes[:10, :10] == 0).all() and (codes[30:, 30:] == 0).all()
    assert (codes[10:30, 10:30] > 0).all()
    classify_raster(scene, tmp_path / "values", 4, masks=[f"{qa_path}:8"], report=False)
    assert (_codes(tmp_path / "values")[0][:10, :10] == 0).all()
    for bad in ("qa.tif", "qa.tif:x", "qa.tif:bits=99"):
        with pytest.raises(ValueError, match="--mask"):
            parse_mask(bad)


# -- Sentinel-2 products as downloaded ------------------------------------------------------------

PRODUCT = "S2B_MSIL2A_20240601T103629_N0510_R008_T32TLR_20240601T133041.SAFE"


def _product(root: Path) -> tuple[Path, np.ndarray]:
    """A Level-2A product as ESA delivers it, small: 10 m bands B02-B04, B08 (40x40), 20 m
    bands B11, B12 and SCL (20x20), 60 m B01; clouds (SCL 9) in the top-left 20 m pixels."""
    granule = root / PRODUCT / "GRANULE" / "L2A_T32TLR_A037000_20240601T103629" / "IMG_DATA"
    stem = "T32TLR_20240601T103629"
    fine, coarse = _covers(40), _covers(20)
    for k, band in enumerate(["B02", "B03", "B04", "B08"]):
        (granule / "R10m").mkdir(parents=True, exist_ok=True)
        _write(granule / "R10m" / f"{stem}_{band}_10m.jp2", _band(fine, k, k), 10)
    (granule / "R20m").mkdir(parents=True)
    for k, band in ((4, "B11"), (5, "B12"), (0, "B02")):  # B02 again, coarser: not used
        _write(granule / "R20m" / f"{stem}_{band}_20m.jp2", _band(coarse, k, k), 20)
    scl = np.full((20, 20), 4, dtype=np.uint8)
    scl[:4, :4] = 9
    _write(granule / "R20m" / f"{stem}_SCL_20m.jp2", scl, 20)
    (granule / "R60m").mkdir()
    _write(granule / "R60m" / f"{stem}_B01_60m.jp2", _band(_covers(8)[:7, :7], 0, 9), 60)
    (root / PRODUCT / "MTD_MSIL2A.xml").write_text("<metadata/>")
    return root / PRODUCT, fine


def test_a_sentinel2_product_folder_and_zip(tmp_path):
    safe, truth = _product(tmp_path / "download")
    result = _run("classify", safe, "-k", 4, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    codes, profile = _codes(tmp_path / "out")
    assert codes.shape == (40, 40) and profile["transform"].a == 10
    assert summary["features"] == ["B02", "B03", "B04", "B08", "B11", "B12"]
    assert set(summary["resampling"]) == {"T32TLR_20240601T103629_B11_20m.jp2",
                                          "T32TLR_20240601T103629_B12_20m.jp2"}  # fmt: skip
    assert (codes[:8, :8] == 0).all() and (codes[8:, 8:] > 0).all()  # the SCL's clouds
    assert _agrees(codes[8:, 8:], truth[8:, 8:])
    assert summary["quicklook"]["names"] == ["B04", "B03", "B02"]
    assert "Sentinel-2 L2A" in summary["product"] and "SCL" in summary["masks"][0]
    # the same product zipped, as downloaded
    archive = tmp_path / "product.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in safe.rglob("*"):
            z.write(file, file.relative_to(safe.parent).as_posix())
    assert _run("classify", archive, "-k", 4, "-o", tmp_path / "zipped", "-q").exit_code == 0
    assert np.array_equal(_codes(tmp_path / "zipped")[0], codes)
    # chosen bands, another grid, and the clouds kept
    result = _run("classify", safe, "-k", 4, "--bands", "B04,B08,B11", "--resolution", 20,
                  "--no-mask-scl", "-o", tmp_path / "chosen", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    chosen = json.loads(result.output)
    assert chosen["features"] == ["B04", "B08", "B11"] and "masks" not in chosen
    assert (_codes(tmp_path / "chosen")[0] > 0).all()
    assert _codes(tmp_path / "chosen")[0].shape == (20, 20)
    missing = _run("classify", safe, "--bands", "B05", "-o", tmp_path / "none")
    assert missing.exit_code == 1 and "has no band B05" in missing.output


# -- the quicklook's bands -------------------------------------------------------------------------


def test_the_quicklook_finds_red_green_blue_by_name_and_says_so(tmp_path):
    truth = _covers(20)
    files = [_write(tmp_path / f"LC08_L2SP_199032_20240601_B{n}.TIF", _band(truth, n % 6, n), 30)
             for n in range(1, 8)]  # fmt: skip
    result = classify_raster(files, tmp_path / "landsat", 3, report=False)
    quick = result.summary["quicklook"]
    assert quick["bands"] == [4, 3, 2] and "Landsat OLI" in quick["chosen_by"]
    described = tmp_path / "described.tif"
    _write(described, np.stack([_band(truth, k, k) for k in range(4)]), 30)
    with rasterio.open(described, "r+") as dst:
        for i, name in enumerate(["nir", "blue", "green", "red"], start=1):
            dst.set_band_description(i, name)
    quick = classify_raster(described, tmp_path / "named", 3, report=False).summary["quicklook"]
    assert quick["bands"] == [4, 3, 2] and "descriptions" in quick["chosen_by"]
    plain = tmp_path / "plain.tif"
    _write(plain, np.stack([_band(truth, k, k) for k in range(4)]), 30)
    quick = classify_raster(plain, tmp_path / "plain", 3, report=False).summary["quicklook"]
    assert quick["bands"] == [1, 2, 3] and "--rgb" in quick["chosen_by"]


def test_a_product_on_a_dask_cluster_gives_the_same_classes(tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    safe, _ = _product(tmp_path / "download")
    local = classify_raster(safe, tmp_path / "local", 4, report=False)
    remote = classify_raster(safe, tmp_path / "dask", 4, report=False, scheduler="local:1")
    assert np.array_equal(_codes(tmp_path / "local")[0], _codes(tmp_path / "dask")[0])
    assert "dask" in remote.summary and "dask" not in local.summary  # it ran on the cluster
    assert remote.summary["masks"] == local.summary["masks"]


def test_a_mask_of_another_extent_is_refused_in_one_line(tmp_path):
    scene = _write(tmp_path / "scene.tif", _band(_covers(40), 0, 1), 10)
    qa = _write(tmp_path / "qa.tif", np.zeros((10, 10), dtype=np.uint16), 10)  # a quarter
    result = _run("classify", scene, "-k", 2, "--mask", f"{qa}:1", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "does not cover the bands' extent" in result.output
    assert not (tmp_path / "out").exists()
