"""Data set statistics on tiny folder trees (fast) and on the shared LFW listing (data)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from faceprint.datasets import dataset_stats
from faceprint.errors import DatasetNotFoundError
from faceprint.pipeline import FacePipeline


def _jpeg(path: Path, value: int = 128, size: int = 120) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "people"
    for i in range(3):
        _jpeg(root / "Ann" / f"Ann_{i + 1:04d}.jpg", i)
    _jpeg(root / "Bob" / "Bob_0001.jpg", 10)
    (root / "Bob" / "Bob_0002.jpg").write_bytes(b"not an image at all")  # corrupt
    (root / "Bob" / "notes.txt").write_text("ignored")
    for i in range(12):
        _jpeg(root / "Cy" / f"Cy_{i + 1:04d}.jpg", 20 + i)
    (root / "Empty").mkdir()
    males = ["Bob_0001.jpg", "Bob_0002.jpg"] + [f"Cy_{i:04d}.jpg" for i in range(1, 13)]
    (tmp_path / "male_names.txt").write_text("\n".join(males) + "\n")
    (tmp_path / "female_names.txt").write_text("Ann_0001.jpg\nAnn_0002.jpg\nAnn_0003.jpg\n")
    return root


def test_folder_stats_without_pipeline(tree: Path) -> None:
    s = dataset_stats(tree)
    assert (s.images, s.unreadable, s.identities, s.breadth) == (17, 1, 3, 3)
    assert (s.identities_min2, s.identities_min5, s.identities_min10) == (3, 1, 1)
    assert s.depth_histogram["2"] == 1 and s.depth_histogram["3-4"] == 1 and s.depth_histogram["10-19"] == 1
    assert s.depth_median == 3.0 and s.depth_max == 12
    assert s.composition["gender (images)"] == {"female": 3, "male": 14}
    assert s.composition["gender (identities)"] == {"female": 1, "male": 2}
    assert s.checked_images is None and s.detection_failures is None
    text = " ".join(s.warnings)
    assert "1 file(s) are not readable" in text
    assert "thin depth for training" in text and "thin breadth for training: 3 identities" in text
    d = s.to_dict()
    assert d["breadth"] == 3 and d["depth_histogram"]["1"] == 0


def test_enrollment_use_has_no_training_warnings(tree: Path) -> None:
    s = dataset_stats(tree, use="enrollment")
    assert not any("training" in w for w in s.warnings)


def test_folder_stats_with_pipeline(tree: Path, fake_detector: object, fake_embedder: object) -> None:
    pipe = FacePipeline(detector=fake_detector, embedder=fake_embedder)  # type: ignore[arg-type]
    seen: list[int] = []
    total: list[int] = []
    s = dataset_stats(tree, pipeline=pipe, progress=seen.append, n_images=total.append)
    assert s.checked_images == 16 and len(seen) == 16 and total == [16]  # the corrupt file is caught by its signature
    assert s.detection_failures == 0
    assert s.near_duplicate_pairs is not None and s.near_duplicate_threshold == 0.95
    sampled = dataset_stats(tree, pipeline=pipe, max_images=5)
    assert sampled.checked_images == 5


def test_utkface_layout(tmp_path: Path) -> None:
    for name in ["25_1_2_a.jpg", "30_0_0_b.jpg", "31_0_0_c.jpg", "70_1_1_d.jpg", "bad_name.jpg"]:
        _jpeg(tmp_path / name)
    s = dataset_stats(tmp_path, layout="utkface")
    assert s.images == 5 and s.malformed_names == 1 and s.identities is None
    assert s.composition["gender"] == {"female": 2, "male": 2}
    assert s.composition["age band"] == {"0-17": 0, "18-29": 1, "30-44": 2, "45-59": 0, "60+": 1}
    assert any("no identity labels" in w for w in s.warnings)
    assert any("'0-17' is under-represented" in w for w in s.warnings)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError):
        dataset_stats(tmp_path / "missing")
    with pytest.raises(ValueError, match="layout"):
        dataset_stats(tmp_path, layout="flat")  # type: ignore[arg-type]


@pytest.mark.data
def test_lfw_shared_subset_counts(data_root: Path) -> None:
    images = data_root / "lfw" / "lfw-deepfunneled"
    if not images.is_dir():
        pytest.skip(f"LFW images not found under {data_root}")
    s = dataset_stats(images)
    # The shared subset (datasets README): 12,405 images of 4,921 people, 1,680 with >= 2 images.
    # The full LFW has 5,749 people; its 1,680 people with >= 2 images are all here.
    assert s.identities == 4921
    assert s.identities_min2 == 1680
    assert s.images == 12405
    assert s.unreadable == 0
    assert set(s.composition["gender (images)"]) >= {"male", "female"}


def test_truncated_jpeg_counts_as_unreadable_with_pipeline(
    tree: Path, fake_detector: object, fake_embedder: object
) -> None:
    (tree / "Ann" / "Ann_0004.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # JPEG signature, no image
    assert dataset_stats(tree).unreadable == 1  # only the signature check without a pipeline
    pipe = FacePipeline(detector=fake_detector, embedder=fake_embedder)  # type: ignore[arg-type]
    s = dataset_stats(tree, pipeline=pipe)
    assert s.unreadable == 2 and s.checked_images == 17 and s.detection_failures == 0


# ---------------------------------------------------------------------------------------------
# parsers of the single data sets (faceprint.datasets.lfw / utkface / nuaa / orl)
# ---------------------------------------------------------------------------------------------


def test_select_folds_keeps_the_first_folds() -> None:
    from faceprint.datasets import Pair, select_folds

    pairs = [Pair(Path("a"), Path("b"), f % 2 == 0, f) for f in (0, 1, 2, 2, 3)]
    assert select_folds(pairs, None) == pairs
    assert [p.fold for p in select_folds(pairs, 3)] == [0, 1, 2, 2]
    with pytest.raises(ValueError, match="folds must be >= 2"):
        select_folds(pairs, 1)


def test_lfw_identities_seeded_subset(tmp_path: Path) -> None:
    from faceprint.datasets import lfw_identities

    images = tmp_path / "lfw" / "lfw-deepfunneled"
    for name, n in (("Ann", 2), ("Bob", 1), ("Cid", 3), ("Dee", 1)):
        for i in range(n):
            _jpeg(images / name / f"{name}_{i + 1:04d}.jpg", i)
    every = lfw_identities(tmp_path)
    assert [p.parent.name for p in every] == ["Ann", "Ann", "Bob", "Cid", "Cid", "Cid", "Dee"]
    sub = lfw_identities(tmp_path, max_identities=2, seed=3)
    assert len({p.parent.name for p in sub}) == 2 and sub == lfw_identities(tmp_path, max_identities=2, seed=3)
    assert sub == sorted(sub)  # person by person, in name order
    with pytest.raises(ValueError, match="max_identities must be >= 2"):
        lfw_identities(tmp_path, max_identities=1)
    with pytest.raises(DatasetNotFoundError):
        lfw_identities(tmp_path / "nowhere")


def test_utkface_images_and_seeded_sample(tmp_path: Path) -> None:
    from faceprint.datasets import sample_images, utkface_images

    folder = tmp_path / "utkface" / "UTKFace"
    with pytest.raises(DatasetNotFoundError, match="utkface"):
        utkface_images(tmp_path)
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="no .jpg"):
        utkface_images(tmp_path)
    names = [f"{20 + i}_{i % 2}_{i % 5}_2017{i:04d}.jpg.chip.jpg" for i in range(9)]
    for i, n in enumerate(names):
        _jpeg(folder / n, i, size=16)
    paths = utkface_images(tmp_path)
    assert [p.name for p in paths] == sorted(names)
    assert sample_images(paths, None) == paths and sample_images(paths, 9) == paths
    sample = sample_images(paths, 4, seed=5)
    rng = np.random.default_rng(5)  # the rule the CLI applied before it moved here
    assert sample == [paths[i] for i in sorted(rng.choice(len(paths), 4, replace=False).tolist())]


def test_pad_samples_both_layouts(tmp_path: Path) -> None:
    from faceprint.datasets import nuaa_images, pad_samples

    nuaa = tmp_path / "nuaa"
    _jpeg(nuaa / "ClientRaw" / "0001" / "a.jpg", 1, size=16)
    _jpeg(nuaa / "ClientRaw" / "0002" / "b.jpg", 2, size=16)
    _jpeg(nuaa / "ImposterRaw" / "0001" / "c.jpg", 3, size=16)
    (nuaa / "ImposterRaw" / "0001" / "c.txt").write_text("not a sample")
    got = pad_samples(nuaa, {".jpg"})
    assert [(p.name, attack, kind) for p, attack, kind in got] == [
        ("a.jpg", False, ""),
        ("b.jpg", False, ""),
        ("c.jpg", True, "print"),
    ]
    assert [(p.name, subject, attack) for p, subject, attack in nuaa_images(nuaa)] == [
        ("a.jpg", "0001", False),
        ("b.jpg", "0002", False),
        ("c.jpg", "0001", True),
    ]
    generic = tmp_path / "generic"
    _jpeg(generic / "Live" / "x.jpg", 4, size=16)
    _jpeg(generic / "replay" / "y.jpg", 5, size=16)
    (generic / "replay" / "z.mp4").write_bytes(b"")
    got = pad_samples(generic, {".jpg", ".mp4"})
    assert [(p.name, attack, kind) for p, attack, kind in got] == [
        ("x.jpg", False, ""),
        ("y.jpg", True, "replay"),
        ("z.mp4", True, "replay"),
    ]
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetNotFoundError, match="ClientRaw"):
        pad_samples(tmp_path / "flat", {".jpg"})


def test_orl_images_numeric_order(tmp_path: Path) -> None:
    from faceprint.datasets import orl_images

    with pytest.raises(DatasetNotFoundError, match="ORL not found"):
        orl_images(tmp_path)
    for person in (1, 2, 10):
        for k in (1, 2, 10):
            f = tmp_path / "orl" / "orl_faces" / f"s{person}" / f"{k}.pgm"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"P5\n1 1\n255\n\x00")
    got = [(p.parent.name, p.name, person) for p, person in orl_images(tmp_path)]
    assert got == [(f"s{s}", f"{k}.pgm", s) for s in (1, 2, 10) for k in (1, 2, 10)]


def test_old_import_paths_still_resolve() -> None:
    import faceprint.bias as old_bias
    import faceprint.datasets as ds
    import faceprint.evaluation as ev
    import faceprint.lfw as old_lfw
    import faceprint.report as old_report

    assert ev.data_root is ds.data_root and ev.read_lfw_pairs is ds.read_lfw_pairs and ev.Pair is ds.Pair
    assert old_bias.parse_utkface_name is ds.parse_utkface_name
    assert old_bias.group_error_rates is ev.group_error_rates
    assert old_lfw.lfw_pairs is ds.lfw_pairs and old_lfw.evaluate_lfw is ev.evaluate_lfw
    assert old_report.write_report is ev.write_report and old_report.build_report is ev.build_report
    for module in (old_bias, old_lfw, old_report, ds, ev):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def _imports(path: Path) -> set[str]:
    """Modules a source file imports, relative imports resolved inside faceprint (TYPE_CHECKING included)."""
    import ast

    rel = path.relative_to(Path(__file__).resolve().parents[1] / "src")
    base = list(rel.with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[: len(base) - node.level + 1] if node.level else []
            out.add(".".join([*parent, *(node.module.split(".") if node.module else [])]))
    return out


def test_datasets_import_no_higher_layer() -> None:
    """faceprint.datasets reads files: it never imports evaluation, a pipeline stage or an interface."""
    src = Path(__file__).resolve().parents[1] / "src" / "faceprint" / "datasets"
    # pipeline: a type annotation of dataset_stats only
    allowed = {"faceprint.errors", "faceprint.settings", "faceprint.pipeline"}
    for path in sorted(src.glob("*.py")):
        inside = {m for m in _imports(path) if m.startswith("faceprint")}
        bad = {m for m in inside if not m.startswith("faceprint.datasets") and m not in allowed}
        assert not bad, f"{path.name} imports {sorted(bad)}"
    stats = (src / "stats.py").read_text(encoding="utf-8")
    assert "if TYPE_CHECKING:\n    from ..pipeline import FacePipeline" in stats
