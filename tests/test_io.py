"""Reading images of every kind, and output folders that appear whole."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgclust.errors import ImageReadError, ImageTooLargeError, OutputExistsError
from imgclust.io import StagedOutputDir, read_image


def test_modes(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    grey16 = (np.arange(35, dtype=np.uint16) * 1000).reshape(5, 7)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, grey16)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png").shape == (5, 7, 4)
    Image.fromarray(rgb).save(tmp_path / "a.gif")
    assert read_image(tmp_path / "a.gif").shape[:2] == (5, 7)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (6, 3), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "o.jpg", exif=exif)
    assert read_image(tmp_path / "o.jpg").shape == (6, 3, 3)


def test_errors(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8\xff\xe0 nonsense")
    with pytest.raises(ImageReadError, match=r"x\.jpg"):
        read_image(tmp_path / "x.jpg")
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(
        ImageTooLargeError, match=r"100x100 = 10,000 pixels is more than the limit of 9,999"
    ):
        read_image(tmp_path / "big.png", max_pixels=9_999)
    assert read_image(tmp_path / "big.png", max_pixels=None).shape == (100, 100, 3)


def test_staged_output_dir(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), StagedOutputDir(final) as stage:
        (stage.path / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with StagedOutputDir(final) as stage:
        (stage.path / "a.txt").write_text("1")
    assert (final / "a.txt").read_text() == "1"
    with pytest.raises(OutputExistsError, match="already holds files"), StagedOutputDir(final):
        pass
    with StagedOutputDir(final, overwrite=True) as stage:
        (stage.path / "a.txt").write_text("2")
    assert (final / "a.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputExistsError, match="not a folder"), StagedOutputDir(tmp_path / "file"):
        pass
