"""The figure set: what ``sphereviz figures`` writes, byte-identical on rerun, offline gallery.

Truths used: the paper's numbers for the decision regions (two classes 90° apart, m = 4:
max intra 48° < min inter 54°; m = 3: 67.5° > 45°; four uniform classes, m = 3: 45° = 45°),
file bytes of a second generation, and the HTML parsed for every address it refers to.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import shared_cache  # noqa: E402

from sphereviz import figures, gallery, runs, sweep  # noqa: E402
from sphereviz.data.lfw import prepare_lfw_top6  # noqa: E402

ANALYTIC_NAMES = [
    "psi_curves", "regions_two_classes", "regions_four_classes", "bound_map",
    "regions_sphereface_line",
]  # fmt: skip
MNIST_NAMES = [
    "mnist_features_2d",
    "mnist_sphere",
    "mnist_angle_histograms",
    "mnist_accuracy",
    "mnist_training_curves",
]
#: A few seconds of training: enough for finite, non-degenerate features, not for accuracy.
TINY = {
    "epochs": 1,
    "max_train_samples": 256,
    "max_test_samples": 120,
    "width": 4,
    "batch_size": 64,
    "device": "cpu",
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


class AddressCollector(HTMLParser):
    """Every src/href in a page, and the tags that carry them."""

    def __init__(self):
        super().__init__()
        self.addresses: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.addresses.append((tag, value))


def addresses_in(path: Path) -> list[tuple[str, str]]:
    collector = AddressCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector.addresses


def assert_local_page(page: Path, out: Path) -> None:
    """Every address in ``page`` is a relative file that exists beside it; no CDN, no network."""
    text = page.read_text(encoding="utf-8")
    assert "https://cdn" not in text, f"{page.name} refers to a CDN"
    assert "cdn.plot.ly" not in text
    for tag, address in addresses_in(page):
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", address), f"{page.name}: {tag} -> {address}"
        assert not address.startswith(("/", "//")), f"{page.name}: absolute path {address}"
        assert (out / address).is_file(), f"{page.name}: {address} does not exist"


def static_bytes(out: Path, records) -> dict[str, bytes]:
    return {
        name: (out / name).read_bytes()
        for record in records
        for name in record.files
        if name.endswith((".pdf", ".svg", ".png", ".html"))
    }


# --- analytic figures: no training -----------------------------------------------------------


@pytest.mark.slow
def test_analytic_set_is_complete_deterministic_captioned_and_offline(tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    code = figures.main(["--analytic-only", "--out", str(first), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["figures"] == ANALYTIC_NAMES
    assert summary["seconds"] > 0

    # An earlier trained figure whose file is there is kept in README/index/manifest; one whose
    # file is gone is dropped.
    second.mkdir()
    (second / "old.png").write_bytes(b"png")
    earlier = [
        gallery.FigureRecord(
            "old", "mnist", "Old", "Earlier.", "sphereviz figures", "x()", ("old.png",)
        ),
        gallery.FigureRecord(
            "gone", "faces", "Gone", "Deleted.", "sphereviz figures", "y()", ("no.png",)
        ),
    ]
    gallery.write_manifest(second, earlier)
    records = figures.generate_figures(second, analytic_only=True, log=lambda _: None)
    listed = json.loads((second / "figures.json").read_text())["figures"]
    assert [item["name"] for item in listed] == [*ANALYTIC_NAMES, "old"]
    assert (
        "`old`" in (second / "README.md").read_text()
        and "gone" not in (second / "index.html").read_text()
    )
    assert [r.name for r in records] == ANALYTIC_NAMES
    for record in records:
        assert sorted(record.files) == sorted(f"{record.name}.{f}" for f in ("pdf", "svg", "png"))
        for name in record.files:
            assert (first / name).stat().st_size > 1000, name
    # Byte-identical across two generations (different folders, same machine).
    assert static_bytes(first, records) == static_bytes(second, records)
    assert (first / "psi_curves.pdf").read_bytes().startswith(b"%PDF")
    assert (first / "psi_curves.png").read_bytes().startswith(b"\x89PNG")

    readme = (first / "README.md").read_text(encoding="utf-8")
    for record in records:
        assert f"`{record.name}`" in readme
        assert record.caption in readme
        section = readme.split(f"`{record.name}`", 1)[1]
        assert "Command: `sphereviz figures --out" in section.split("###", 1)[0]
    assert f"--out {first} --analytic-only" in readme

    manifest = json.loads((first / "figures.json").read_text())
    assert [item["name"] for item in manifest["figures"]] == ANALYTIC_NAMES
    index = first / "index.html"
    assert_local_page(index, first)
    images = [a for tag, a in addresses_in(index) if tag == "img"]
    assert images == [f"{name}.png" for name in ANALYTIC_NAMES]


def _panel_texts(fig) -> list[str]:
    return [" ".join(t.get_text() for t in ax.texts) for ax in fig.axes]


def test_region_figures_show_the_papers_numbers():
    two = _panel_texts(figures.regions_figure(2))
    # softmax, modified softmax, A-Softmax m = 2, 3, 4; W1, W2 90° apart
    assert "intra 67.5°, inter 45.0°" in two[3] and "fails" in two[3]
    assert "intra 48.0°, inter 54.0°" in two[4] and "holds" in two[4]
    assert "margin 30.0°" in two[2]  # (m−1)/(m+1)·90° at m = 2
    four = _panel_texts(figures.regions_figure(4))
    assert "intra 45.0°, inter 45.0°" in four[3] and "holds" in four[3]  # K = 4, m = 3
    assert "intra 60.0°, inter 30.0°" in four[2] and "fails" in four[2]  # 2θ/(m+1), (m−1)θ/(m+1)
    with pytest.raises(ValueError, match="num_classes must be 2 or 4"):
        figures.regions_figure(3)


# --- trained figures from tiny runs ----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """One tiny 3-D and one tiny 2-D A-Softmax run, standing in for each of the ten specs
    (trained once per test session: the xdist worker that comes second reuses them)."""
    specs = sweep.mnist_run_specs(**TINY)
    with shared_cache(tmp_path_factory, "tiny-runs") as runs_dir:
        trained = {
            dim: sweep.ensure_runs(
                [next(s for s in specs if s.dim == dim and s.m == 4)], runs_dir, progress=False,
                log=lambda _: None,
            )[0]
            for dim in (3, 2)
        }  # fmt: skip
    prepared = [runs.PreparedRun(spec, trained[spec.dim].run, True, 0.0) for spec in specs]
    return runs_dir, specs, trained, prepared


@pytest.mark.slow
def test_trained_figures_from_tiny_runs(tiny_runs, tmp_path):
    _, _, _, prepared = tiny_runs
    first, second = tmp_path / "first", tmp_path / "second"
    records = figures.mnist_figures(first, prepared)
    figures.mnist_figures(second, prepared)
    assert [r.name for r in records] == MNIST_NAMES
    sphere = next(r for r in records if r.name == "mnist_sphere")
    assert sphere.interactive == tuple(f"mnist_sphere_m{m}.html" for m in (1, 2, 3, 4))
    for record in records:
        for name in record.files:
            assert (first / name).stat().st_size > 1000, name
    assert static_bytes(first, records) == static_bytes(second, records)

    gallery.write_index(first, records)
    gallery.write_readme(first, records)
    assert_local_page(first / "index.html", first)
    iframes = [a for tag, a in addresses_in(first / "index.html") if tag == "iframe"]
    assert iframes == list(sphere.interactive)
    for page in sphere.interactive:
        assert_local_page(first / page, first)
        assert ("script", "plotly.min.js") in addresses_in(first / page)
    # One shared plotly.js beside the pages instead of 4.8 MB inlined in each.
    assert (first / "plotly.min.js").stat().st_size > 1_000_000
    assert all((first / page).stat().st_size < 1_000_000 for page in sphere.interactive)
    readme = (first / "README.md").read_text(encoding="utf-8")
    for record in records:
        assert f"`{record.name}`" in readme and f"Command: `{record.command}`" in readme


@pytest.mark.slow
def test_mnist_figures_draw_only_the_dimensions_they_have(tiny_runs, tmp_path):
    """2-D runs alone: Fig. 2 and the accuracy curves, no sphere (3-D alone, the demo's
    default, is checked by tests/test_demo.py); no run at all is a clear error."""
    _, _, _, prepared = tiny_runs
    records = figures.mnist_figures(tmp_path, [p for p in prepared if p.spec.dim == 2])
    assert [r.name for r in records] == ["mnist_features_2d", "mnist_accuracy"]
    accuracy = records[1].caption
    assert "with 2-D features" in accuracy and "3-D" not in accuracy
    assert not list(tmp_path.glob("mnist_sphere*"))
    with pytest.raises(ValueError, match="no 3-D or 2-D run among"):
        figures.mnist_figures(tmp_path, [])


@pytest.mark.slow
def test_a_run_with_the_same_config_is_reused_and_another_is_not(tiny_runs, tmp_path):
    runs_dir, specs, trained, _ = tiny_runs
    spec = trained[3].spec
    assert runs.find_run(spec.config, runs_dir) == runs_dir / spec.name
    # device and out do not change the recipe; the seed does
    import dataclasses

    moved = dataclasses.replace(spec.config, device="auto", out="elsewhere")
    assert runs.find_run(moved, runs_dir) == runs_dir / spec.name
    assert runs.find_run(dataclasses.replace(spec.config, seed=1), runs_dir) is None
    assert runs.find_run(spec.config, tmp_path / "missing") is None
    (again,) = sweep.ensure_runs([spec], runs_dir, progress=False, log=lambda _: None)
    assert again.reused and again.seconds == 0.0
    assert again.run.metrics == trained[3].run.metrics


def sphere_page_trace_names(page: Path) -> list[str]:
    """The names of the marker traces of an exported plotly page (from its embedded JSON)."""
    text = page.read_text(encoding="utf-8")
    data = json.JSONDecoder().raw_decode(text, text.index("[", text.index("Plotly.newPlot(")))[0]
    return [trace["name"] for trace in data if trace.get("mode") == "markers"]


def test_sphere_pages_name_the_classes(tmp_path):
    import numpy as np

    from sphereviz.config import TrainConfig
    from sphereviz.runs import Run

    rng = np.random.default_rng(0)
    weights = np.eye(3)
    labels = np.repeat(np.arange(3), 20)
    features = weights[labels] + 0.2 * rng.normal(size=(60, 3))
    embeddings = {"features": features, "labels": labels, "class_weights": weights}
    mnist = Run(None, TrainConfig(dim=3), [], embeddings)
    page = figures.sphere_html(mnist, "MNIST", "a-softmax", 4, tmp_path / "digits")
    assert sphere_page_trace_names(page) == ["digit 0", "digit 1", "digit 2"]
    names = ["Colin Powell", "George W Bush", "Tony Blair"]
    page = figures.sphere_html(mnist, "faces", "a-softmax", 4, tmp_path / "faces", names)
    assert sphere_page_trace_names(page) == names
    gone = TrainConfig(dataset="faces", faces_cache=str(tmp_path / "gone"), model="sfnet4")
    unknown = Run(None, gone, [], embeddings)
    page = figures.sphere_html(unknown, "faces", "a-softmax", 4, tmp_path / "unknown")
    assert sphere_page_trace_names(page) == ["class 0", "class 1", "class 2"]


def test_run_specs_are_the_demo_comparison():
    specs = sweep.mnist_run_specs()
    assert len(specs) == 30 and len({s.name for s in specs}) == 30
    assert sorted(s.seed for s in specs) == sorted(list(sweep.SEEDS) * 10)
    assert sorted((s.loss, s.m, s.dim) for s in specs) == sorted(
        (loss, m, dim)
        for dim in (2, 3)
        for _ in sweep.SEEDS
        for loss, m in [
            ("softmax", None),
            ("modified-softmax", None),
            ("a-softmax", 2),
            ("a-softmax", 3),
            ("a-softmax", 4),
        ]
    )
    assert all(s.config.epochs == specs[0].config.epochs for s in specs)
    quick = sweep.mnist_run_specs(quick=True)
    assert all(s.name.endswith("-quick") for s in quick)
    assert quick[0].config.epochs < specs[0].config.epochs
    faces = sweep.faces_run_specs("build/faces/x")
    assert [s.m for s in faces] == [m for m in (1, 2, 3, 4) for _ in sweep.SEEDS]
    assert [s.seed for s in faces[:3]] == list(sweep.SEEDS)
    assert {s.config.model for s in faces} == {"sfnet4"} and {s.dim for s in faces} == {3}


def test_faces_option_checks_the_lfw_folder_before_training(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = figures.main(
        ["--out", str(tmp_path / "out"), "--runs", str(runs), "--faces", str(tmp_path)]
    )
    assert code == 2
    assert "lfw_landmark.txt" in capsys.readouterr().err
    assert not runs.exists()  # nothing was trained


# --- faces: the six largest LFW identities ---------------------------------------------------


@pytest.mark.slow
def test_face_figures_from_the_six_largest_lfw_identities(lfw_root, tmp_path):
    counts = {
        folder.name: len(list(folder.glob("*.jpg")))
        for folder in (lfw_root / "images").iterdir()
        if folder.is_dir()
    }
    largest = sorted(counts, key=lambda name: (-counts[name], name))[:6]

    cache = prepare_lfw_top6(lfw_root, tmp_path / "faces", progress=False)
    assert sorted(cache.class_names) == sorted(largest)
    assert cache.images.shape[1:3] == (112, 96)
    # Images without a landmark line are skipped, so at most the folders' counts.
    assert 0.95 * sum(counts[n] for n in largest) <= len(cache) <= sum(counts[n] for n in largest)

    # One tiny run on the first images stands in for m = 1…4 (drawing, not learning, is tested).
    specs = sweep.faces_run_specs(
        tmp_path / "faces", epochs=1, max_train_samples=96, max_test_samples=60, device="cpu"
    )
    (tiny,) = sweep.ensure_runs(specs[-1:], tmp_path / "runs", progress=False, log=lambda _: None)
    prepared = [runs.PreparedRun(spec, tiny.run, True, 0.0) for spec in specs]
    out = tmp_path / "out"
    records = figures.faces_figures(out, prepared, cache.class_names, "sphereviz figures --faces X")
    assert [r.name for r in records] == ["faces_sphere", "faces_angle_histograms"]
    assert records[0].interactive == tuple(f"faces_sphere_m{m}.html" for m in (1, 2, 3, 4))
    for record in records:
        for name in record.files:
            assert (out / name).stat().st_size > 1000, name
    caption = records[0].caption
    assert all(name.replace("_", " ") in caption for name in largest)
    # the interactive spheres name each identity in their legend
    present = sorted(set(tiny.run.embeddings["labels"].tolist()))
    expected = [cache.class_names[label].replace("_", " ") for label in present]
    assert sphere_page_trace_names(out / "faces_sphere_m4.html") == expected
    gallery.write_index(out, records)
    gallery.write_readme(out, records)
    assert_local_page(out / "index.html", out)
    assert "Labeled Faces in the Wild" in (out / "README.md").read_text()


@pytest.mark.slow
def test_parallel_runs_equal_their_configs_and_are_reused(tmp_path):
    """Two missing runs train in two worker processes; each folder holds its own recipe."""
    specs = [s for s in sweep.mnist_run_specs(**TINY, seeds=(0, 1)) if s.m == 4 and s.dim == 2]
    logged = []
    prepared = sweep.ensure_runs(specs, tmp_path / "runs", log=logged.append, jobs=2)
    assert [p.run.config.recipe() for p in prepared] == [s.config.recipe() for s in specs]
    assert [p.run.config.seed for p in prepared] == [0, 1]
    first, second = (p.run.embeddings["features"] for p in prepared)
    assert not np.allclose(first, second)  # two seeds, two different runs
    assert sum("trained" in line for line in logged) == 2
    again = sweep.ensure_runs(specs, tmp_path / "runs", log=logged.append, jobs=2)
    assert all(p.reused for p in again)


def test_the_mnist_captions_numbers_come_from_the_runs_and_the_specs():
    from sphereviz.config import TrainConfig

    # today's captions, typed in: the embedded subset is 4,000 train / 1,000 test digits
    assert (
        figures._mnist_data_text(TrainConfig(dataset="mnist"), 1000)
        == "the embedded MNIST subset (4,000 train / 1,000 test digits)"
    )
    capped = TrainConfig(dataset="mnist", max_train_samples=300)
    assert "(300 train / 1,000 test digits)" in figures._mnist_data_text(capped, 1000)
    few = TrainConfig(dataset="mnist", max_test_samples=200)
    assert figures._mnist_data_text(few, 200).startswith("the first 200 test digits")
    assert gallery.GROUP_TITLES["mnist"] == (
        "MNIST: the demo's runs (5 losses × 2 dimensions × 3 seeds)"
    )
    assert (len(sweep.MNIST_LOSSES), len(sweep.MNIST_DIMS), len(sweep.SEEDS)) == (5, 2, 3)
