"""The command-line program, run through click's test runner: outputs and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imgclust.cli import cli
from imgclust.io.outputs import RECORD_NAME

from .conftest import FOUR_COLOURS


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def image_file(tmp_path, four_colour_image) -> Path:
    path = tmp_path / "blocks.png"
    Image.fromarray(four_colour_image).save(path)
    return path


@pytest.fixture
def photo_jpeg(tmp_path, photo) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path, quality=90)
    return path


def _run(runner, *args):
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _no_staging_left(folder: Path) -> bool:
    return not any(p.name.endswith(".tmp") for p in folder.iterdir())


def test_segment_writes_the_contract(runner, image_file, tmp_path, four_colour_image):
    out = tmp_path / "out"
    result = _run(runner, "segment", image_file, "-k", 4, "-o", out, "--space", "rgb", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    expected = {
        "segmented.png",
        "labels.png",
        "palette.json",
        "palette.png",
        "indexed.png",
        "comparison.png",
        "colors3d.png",
    }
    assert expected <= {p.name for p in out.iterdir()}
    palette = json.loads((out / "palette.json").read_text())
    assert palette == {k: v for k, v in summary.items() if k not in ("output", "timings", "report")}
    assert [c["index"] for c in palette["clusters"]] == [0, 1, 2, 3]
    assert sorted(c["rgb"] for c in palette["clusters"]) == sorted(FOUR_COLOURS.tolist())
    assert all(c["pixels"] == 30 and c["fraction"] == 0.25 for c in palette["clusters"])
    assert all(c["hex"] == "#{:02x}{:02x}{:02x}".format(*c["rgb"]) for c in palette["clusters"])
    assert palette["color_space"] == "rgb" and palette["n_clusters"] == 4 and palette["seed"] == 0
    segmented = np.asarray(Image.open(out / "segmented.png"))
    np.testing.assert_array_equal(segmented, four_colour_image)
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.dtype == np.uint8 and labels.shape == (12, 10)
    rgb_of_label = {c["index"]: c["rgb"] for c in palette["clusters"]}
    for index, rgb in rgb_of_label.items():
        assert (four_colour_image[labels == index] == rgb).all()
    indexed = Image.open(out / "indexed.png")
    assert indexed.mode == "P"
    np.testing.assert_array_equal(np.asarray(indexed.convert("RGB")), four_colour_image)
    assert _no_staging_left(tmp_path)


def test_transparent_and_masked_pixels(runner, tmp_path, four_colour_image):
    rgba = np.dstack([four_colour_image, np.full((12, 10), 255, np.uint8)])
    rgba[0, :, 3] = 0  # first row transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    mask = np.full((12, 10), 255, np.uint8)
    mask[-1] = 0  # last row masked out
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    result = _run(
        runner, "segment", tmp_path / "a.png", "-k", 4, "--mask", tmp_path / "mask.png", "-o", out
    )
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(out / "labels.png"))
    assert (labels[0] == 255).all() and (labels[-1] == 255).all() and (labels[1:-1] < 4).all()
    segmented = np.asarray(Image.open(out / "segmented.png"))
    assert segmented.shape == (12, 10, 4) and (segmented[0, :, 3] == 0).all()
    assert (segmented[1:-1, :, 3] == 255).all()
    palette = json.loads((out / "palette.json").read_text())
    rgb = np.array([c["rgb"] for c in palette["clusters"]], dtype=np.uint8)
    np.testing.assert_array_equal(segmented[1:-1, :, :3], rgb[labels[1:-1]])
    assert palette["image"]["clustered_pixels"] == 100
    indexed = Image.open(out / "indexed.png")
    assert indexed.info["transparency"] == 255
    np.testing.assert_array_equal(np.asarray(indexed), labels)


def test_more_than_255_clusters_gives_16_bit_labels(runner, tmp_path):
    colours = np.arange(300 * 3).reshape(300, 1, 3) % 256
    colours[:, 0, 0] = np.arange(300) // 2
    colours[:, 0, 1] = np.arange(300) % 2 * 200
    Image.fromarray(colours.astype(np.uint8)).save(tmp_path / "many.png")
    result = _run(
        runner, "segment", tmp_path / "many.png", "-k", 260, "--space", "rgb", "-o", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(tmp_path / "o" / "labels.png"))
    assert labels.dtype.itemsize == 2 and labels.max() == 259
    assert not (tmp_path / "o" / "indexed.png").exists()


def test_k_auto_writes_choice(runner, photo_jpeg, tmp_path):
    out = tmp_path / "auto"
    result = _run(
        runner, "segment", photo_jpeg, "-k", "auto", "--k-range", "2-6", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    rows = (out / "choose_k.csv").read_text().splitlines()
    assert rows[0] == "k,inertia,silhouette,chosen" and len(rows) == 6
    assert summary["n_clusters"] == summary["chosen_k"]["k"] and 2 <= summary["n_clusters"] <= 6
    assert (out / "choose_k.png").stat().st_size > 0


def test_choose_k_command(runner, photo_jpeg, tmp_path):
    out = tmp_path / "ck"
    result = _run(
        runner, "choose-k", photo_jpeg, "-k", "auto", "--k-range", "2-8", "-o", out, "--json"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    inertias = [row["inertia"] for row in summary["scores"]]
    assert inertias == sorted(inertias, reverse=True)  # more clusters, less inertia
    assert [row["k"] for row in summary["scores"]] == list(range(2, 9))
    assert sum(row["chosen"] for row in summary["scores"]) == 1
    written = {"choose_k.csv", "choose_k.png", "report.html", RECORD_NAME}
    assert written == {p.name for p in out.iterdir()}


def test_choose_k_keeps_the_old_spelling_for_one_release(runner, photo_jpeg, tmp_path):
    """``--k 2-5`` (earlier releases) still works, with a note on stderr; ``-k 3`` (a number
    where choose-k chooses) is refused with a hint."""
    out = tmp_path / "old"
    result = _run(runner, "choose-k", photo_jpeg, "--k", "2-5", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    assert "--k is deprecated" in result.stderr and "-k auto --k-range 2-5" in result.stderr
    assert [row["k"] for row in json.loads(result.stdout)["scores"]] == [2, 3, 4, 5]
    refused = _run(runner, "choose-k", photo_jpeg, "-k", "3", "-o", tmp_path / "n")
    assert refused.exit_code == 2 and "--k-range" in refused.output
    assert not (tmp_path / "n").exists()


def test_segment_says_what_k_means_ran_and_offers_opencv_s_epsilon(runner, photo_jpeg, tmp_path):
    runs = {}
    for name, options in {"tol": ["--tol", "0.2"], "epsilon": ["--epsilon", "0.2"]}.items():
        result = _run(runner, "segment", photo_jpeg, "-k", 6, *options, "-o", tmp_path / name,
                      "--json", "--no-report")  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(result.stdout)
    assert runs["tol"]["warnings"] and "--epsilon" in runs["tol"]["warnings"][0]
    assert "warnings" not in runs["epsilon"]
    assert "OpenCV" in runs["epsilon"]["fit"]["stop_rule"]
    assert runs["epsilon"]["fit"]["refinement_iter"] > runs["tol"]["fit"]["refinement_iter"]
    text = _run(runner, "segment", photo_jpeg, "-k", 6, "-o", tmp_path / "text").output
    assert "restarts on" in text and "iterations" in text


def test_segment_superpixels_and_the_rgb_scatter(runner, photo_jpeg, tmp_path):
    out = tmp_path / "sp"
    result = _run(runner, "segment", photo_jpeg, "-k", 4, "--superpixels", 400,
                  "--scatter-space", "rgb", "-o", out, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["method"] == "superpixels" and summary["scatter_space"] == "rgb"
    facts = summary["superpixels"]
    assert facts["requested"] == 400 and 100 < facts["made"] <= 600
    by = {row["method"]: row for row in facts["comparison"]}
    assert by["superpixels"]["regions"] < by["pixels"]["regions"]
    assert by["superpixels"]["inertia"] >= by["pixels"]["inertia"] * 0.99
    for name in ("superpixels.png", "superpixels_vs_pixels.png", "colors3d.png"):
        assert (out / name).is_file()
    assert 'src="superpixels_vs_pixels.png"' in (out / "report.html").read_text()
    plain = tmp_path / "plain"
    assert _run(runner, "segment", photo_jpeg, "-k", 4, "-o", plain, "-q").exit_code == 0
    assert not (plain / "superpixels.png").exists()


def test_edges_command(runner, tmp_path):
    img = np.zeros((40, 40, 3), np.uint8)
    img[10:30, 10:30] = 255  # one bright square: edges only on its outline
    Image.fromarray(img).save(tmp_path / "sq.png")
    out = tmp_path / "e"
    result = _run(runner, "edges", tmp_path / "sq.png", "-k", 2, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    edges = np.asarray(Image.open(out / "edges.png")) > 0
    assert edges[8:12, 10:30].any() and not edges[15:25, 15:25].any() and not edges[:5].any()
    written = {"edges.png", "edges_overlay.png", "edges_preview.png", "boundaries.png",
               "edges.json", "report.html"}  # fmt: skip
    assert written | {RECORD_NAME} == {p.name for p in out.iterdir()}
    fixed = _run(
        runner,
        "edges",
        tmp_path / "sq.png",
        "-k",
        0,
        "--low",
        0.1,
        "--high",
        0.2,
        "-o",
        tmp_path / "f",
        "--json",
    )
    assert json.loads(fixed.output)["automatic_thresholds"] is False


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One ``imgclust demo`` for the tests below: (its folder, its terminal output)."""
    where = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(where)
        result = _run(CliRunner(), "demo")
        assert result.exit_code == 0, result.output
        assert _run(CliRunner(), "demo").exit_code == 0  # a second run replaces its own results
    return where / "imgclust-demo", result.output


def test_demo(demo_run):
    demo, output = demo_run
    assert (demo / "segment" / "segmented.png").is_file()
    assert (demo / "choose-k" / "choose_k.png").is_file()
    assert (demo / "edges" / "boundaries.png").is_file()
    assert (demo / "group-digits" / "evaluation.json").is_file()
    propagation = json.loads((demo / "representatives-digits" / "propagation.json").read_text())
    assert propagation["label_accuracy"] > 0.95
    assert propagation["training"]["test_accuracy"] > 0.85
    assert "imgclust-demo" in output
    # it ends with its own page, which links every job's page
    assert output.rstrip().endswith(str((demo / "report.html").resolve()))
    links = re.findall(r'href="([^"]+)"', (demo / "report.html").read_text())
    pages = [link for link in links if link.endswith("report.html")]
    assert len(pages) == 5 and all((demo / link).is_file() for link in pages)
    for page in pages:  # each page's "Run again" gives the command that makes that page
        command = page.split("/")[0].split("-")[0].replace("choose", "choose-k")
        assert f"imgclust {command} " in (demo / page).read_text(), page


def test_choose_k_and_edges_show_bars_that_advance(photo, tmp_path):
    from contextlib import contextmanager

    from imgclust.pixels.jobs import run_choose_k, run_edges

    calls = []

    @contextmanager
    def progress(message, total):
        steps = []
        calls.append((message, total, steps))
        yield lambda n=1: steps.append(n)

    run_choose_k(photo, tmp_path / "ck", k_values=[2, 3, 4, 5], progress=progress, report=False)
    run_edges(photo, tmp_path / "e", n_clusters=3, progress=progress, report=False)
    (_, k_total, k_steps), (_, e_total, e_steps) = calls
    assert k_total == 4 and k_steps == [1, 1, 1, 1]
    assert e_total == 4 and e_steps == [1, 1, 1, 1]


def test_demo_report_opens_in_a_browser(demo_run, report_browser):
    demo, _ = demo_run
    with report_browser.open(demo / "report.html", "demo-report.png", width=1280) as page:
        assert page.locator("a[href$='report.html']").count() == 5


def _corrupt_files(tmp_path: Path, photo: np.ndarray) -> dict[str, Path]:
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    full = tmp_path / "full.jpg"
    Image.fromarray(photo).save(full)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return {"text": text, "truncated": truncated, "missing": tmp_path / "nope.png"}


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("text", [], "not an image file that can be read"),
        ("truncated", [], "corrupt or truncated image data"),
        ("missing", [], "does not exist"),
        (
            "photo",
            ["--max-pixels", "100"],
            "is more than the limit of 100; raise it with --max-pixels",
        ),
        ("blocks", ["-k", "0"], "K=0 must be at least 1"),
        ("blocks", ["-k", "many"], "neither a whole number nor 'auto'"),
        (
            "blocks",
            ["-k", "9"],
            "n_clusters=9 is more than the 4 distinct colours in the image; choose K <= 4",
        ),
        ("blocks", ["--mask", "EMPTY"], "no pixel is left to cluster"),
        ("blocks", ["--space", "xyz"], "Invalid value for '--space'"),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(
    runner, tmp_path, image_file, photo, case, args, message
):
    files = _corrupt_files(tmp_path, photo)
    files["blocks"] = image_file
    files["photo"] = tmp_path / "full.jpg"
    empty_mask = tmp_path / "empty.png"
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(empty_mask)
    args = [str(empty_mask) if a == "EMPTY" else a for a in args]
    out = tmp_path / "out"
    result = runner.invoke(cli, ["segment", str(files[case]), "-o", str(out), *args])
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists() and _no_staging_left(tmp_path)


def test_existing_output_is_refused_then_overwritten(runner, image_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    (out / "palette.json").write_text("old")
    refused = runner.invoke(cli, ["segment", str(image_file), "-k", "2", "-o", str(out)])
    assert refused.exit_code == 1 and "already holds files; pass --overwrite" in refused.output
    assert (out / "palette.json").read_text() == "old"
    # palette.json is the user's (no imgclust run wrote it): --overwrite does not replace it
    in_the_way = runner.invoke(cli, ["segment", str(image_file), "-o", str(out), "--overwrite"])
    assert in_the_way.exit_code == 1 and "palette.json is in the way" in in_the_way.output
    assert (out / "palette.json").read_text() == "old"
    (out / "palette.json").unlink()
    done = _run(runner, "segment", image_file, "-k", "2", "-o", out, "--overwrite")
    assert done.exit_code == 0
    assert json.loads((out / "palette.json").read_text())["n_clusters"] == 2
    again = _run(runner, "segment", image_file, "-k", "3", "-o", out, "--overwrite")
    assert again.exit_code == 0  # what imgclust wrote is replaced
    assert json.loads((out / "palette.json").read_text())["n_clusters"] == 3
    assert (out / "keep.txt").read_text() == "mine"  # unrelated files are left alone
    assert _no_staging_left(tmp_path)


def test_failure_while_writing_leaves_nothing(runner, image_file, tmp_path, monkeypatch):
    import imgclust.report.pixel_outputs as outputs

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs.plots, "colors3d_figure", broken)
    out = tmp_path / "out"
    result = runner.invoke(cli, ["segment", str(image_file), "-k", "2", "-o", str(out)])
    assert result.exit_code == 1 and "disk full" in result.output  # one line, no traceback
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    assert not out.exists() and _no_staging_left(tmp_path)


def test_quiet_prints_nothing(runner, image_file, tmp_path):
    result = _run(runner, "segment", image_file, "-k", 2, "-o", tmp_path / "q", "-q")
    assert result.exit_code == 0 and result.output == ""


def test_version_and_help(runner):
    assert _run(runner, "--version").output.startswith("imgclust, version")
    help_text = _run(runner, "--help").output
    for name in ("segment", "choose-k", "edges", "demo"):
        assert name in help_text


def test_openblas_threads_sleep_in_the_program():
    """main() sets OPENBLAS_THREAD_TIMEOUT, which OpenBLAS reads only when NumPy loads it:
    importing the program must not import NumPy."""
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "os.environ.pop('OPENBLAS_THREAD_TIMEOUT', None)\n"
        "from imgclust.cli import main\n"
        "numpy_before = 'numpy' in sys.modules\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(numpy_before, os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False 4"


def test_comparison_is_the_same_from_a_file_and_from_an_array(tmp_path):
    """From a file the original is shrunk while Pillow holds it; from an array, later."""
    from imgclust.pixels.jobs import run_segment

    rng = np.random.default_rng(0)
    photo = np.repeat(np.repeat(rng.integers(0, 256, (60, 100, 3), dtype=np.uint8), 10, 0), 10, 1)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    run_segment(tmp_path / "photo.png", tmp_path / "file", n_clusters=3, random_state=0)
    run_segment(photo, tmp_path / "array", n_clusters=3, random_state=0)
    from_file = np.asarray(Image.open(tmp_path / "file" / "comparison.png"))
    from_array = np.asarray(Image.open(tmp_path / "array" / "comparison.png"))
    assert from_file.shape == (480 + 24, 800 + 10 + 800, 3)
    np.testing.assert_array_equal(from_file, from_array)
