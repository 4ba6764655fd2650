"""What a GIS reads from classify's outputs, checked with GDAL itself: rasterio's bindings
always, the ``gdalinfo`` program where it is installed (Debian's gdal-bin; ``.ci/run``
installs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio", reason="the raster extra (rasterio) is not installed")
from click.testing import CliRunner  # noqa: E402

from imgclust.cli import cli  # noqa: E402
from imgclust.errors import InvalidParameterError  # noqa: E402
from imgclust.raster.classify import classify_raster  # noqa: E402
from tests.test_raster import _planted, _write  # noqa: E402

NAMES = ["water", "vegetation", "soil", "cloud"]


@pytest.fixture
def big_scene(tmp_path):
    """Planted quadrants, large enough for overviews (1,200 x 900)."""
    bands, truth, _ = _planted(height=900, width=1200, seed=3)
    return _write(tmp_path / "scene.tif", bands), truth


@pytest.fixture
def gdalinfo():
    program = shutil.which("gdalinfo")
    if program is None:
        pytest.skip("no gdalinfo here (Debian package gdal-bin; .ci/run installs it)")

    def run(path):
        done = subprocess.run(
            [program, "-json", str(path)], capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)

    return run


def test_classes_tif_carries_names_table_statistics_and_overviews(tmp_path, big_scene, gdalinfo):
    path, _ = big_scene
    result = classify_raster(path, tmp_path / "o", 4, names=",".join(NAMES), random_state=0)
    info = gdalinfo(tmp_path / "o" / "classes.tif")
    band = info["bands"][0]
    assert band["categories"] == ["nodata", *NAMES]
    assert [o["size"] for o in band["overviews"]] == [[600, 450], [300, 225], [150, 113]]
    stats = band["metadata"][""]
    assert stats["STATISTICS_MINIMUM"] == "1" and stats["STATISTICS_MAXIMUM"] == "4"
    codes = rasterio.open(tmp_path / "o" / "classes.tif").read(1)
    valid = codes[codes > 0]
    assert float(stats["STATISTICS_MEAN"]) == pytest.approx(valid.mean())
    assert float(stats["STATISTICS_STDDEV"]) == pytest.approx(valid.std())
    rat = info["rat"]
    columns = [f["name"] for f in rat["fieldDefn"]]
    assert columns[:3] == ["Value", "Count", "Class_Name"] and "Hectares" in columns
    rows = {r["f"][0]: r["f"] for r in rat["row"]}
    for c in result.summary["classes"]:
        assert rows[c["code"]][1] == c["pixels"] == int((codes == c["code"]).sum())
        assert rows[c["code"]][2] == c["name"]
        assert "#{:02x}{:02x}{:02x}".format(*rows[c["code"]][3:6]) == c["color"]


def test_overviews_are_class_codes_never_averages(tmp_path, big_scene):
    path, _ = big_scene
    classify_raster(path, tmp_path / "o", 4, random_state=0)
    with rasterio.open(tmp_path / "o" / "classes.tif") as src:
        assert src.overviews(1) == [2, 4, 8]  # down to less than 256 pixels a side
        small = src.read(1, out_shape=(225, 300))  # read from the overview
        full = src.read(1)
    assert set(np.unique(small)) <= set(np.unique(full))  # no code that is not a class
    # nearest resampling: inside a quadrant, the overview holds the quadrant's class
    inside = (slice(20, 90), slice(20, 130))
    assert (small[inside] == full[::4, ::4][inside]).mean() > 0.95


def test_qml_is_a_paletted_qgis_style_with_names(tmp_path, big_scene):
    path, _ = big_scene
    result = classify_raster(path, tmp_path / "o", 4, names=NAMES, random_state=0)
    style = ET.parse(tmp_path / "o" / "classes.qml").getroot()
    renderer = style.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color")) for e in entries] == [
        (str(c["code"]), c["name"], c["color"]) for c in result.summary["classes"]
    ]


def test_cog_keeps_crs_nodata_colours_table(tmp_path, big_scene, gdalinfo):
    path, _ = big_scene
    plain = classify_raster(path, tmp_path / "plain", 4, random_state=0, report=False)
    cog = classify_raster(
        path, tmp_path / "cog", 4, random_state=0, names=NAMES, cog=True, report=False
    )
    with (
        rasterio.open(tmp_path / "cog" / "classes.tif") as src,
        rasterio.open(tmp_path / "plain" / "classes.tif") as ref,
    ):
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert (src.crs, src.transform, src.nodata) == (ref.crs, ref.transform, ref.nodata)
        assert src.colormap(1) == ref.colormap(1) and src.overviews(1)
        assert np.array_equal(src.read(1), ref.read(1))
    info = gdalinfo(tmp_path / "cog" / "classes.tif")
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    assert info["bands"][0]["categories"] == ["nodata", *NAMES] and "rat" in info
    assert not [p for p in (tmp_path / "cog").iterdir() if "striped" in p.name]
    assert cog.summary["cog"] and not plain.summary["cog"]


def test_names_are_kept_by_the_model(tmp_path, big_scene):
    path, _ = big_scene
    classify_raster(path, tmp_path / "a", 4, names=NAMES, random_state=0, report=False)
    model = json.loads((tmp_path / "a" / "model.json").read_text())
    assert model["names"] == NAMES
    again = classify_raster(path, tmp_path / "b", model=tmp_path / "a" / "model.json")
    assert [c["name"] for c in again.summary["classes"]] == NAMES
    renamed = classify_raster(
        path, tmp_path / "c", model=tmp_path / "a" / "model.json", names="w,v,s,c"
    )
    assert [c["name"] for c in renamed.summary["classes"]] == ["w", "v", "s", "c"]
    with pytest.raises(InvalidParameterError, match="3 class names given for 4 classes"):
        classify_raster(path, tmp_path / "d", 4, names="a,b,c")
    assert not (tmp_path / "d").exists()


def test_k_auto_finds_the_planted_classes_on_the_sample(tmp_path, big_scene):
    path, _ = big_scene
    result = CliRunner().invoke(
        cli, ["classify", str(path), "-k", "auto", "--k-range", "2-8", "-o",
              str(tmp_path / "o"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["chosen_k"]["k"] == 4 and summary["n_classes"] == 4
    rows = (tmp_path / "o" / "choose_k.csv").read_text().splitlines()
    assert rows[0] == "k,inertia,silhouette,chosen" and len(rows) == 8
    assert (tmp_path / "o" / "choose_k.png").stat().st_size > 0
    assert "Choosing K" in (tmp_path / "o" / "report.html").read_text()
