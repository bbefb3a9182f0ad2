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
