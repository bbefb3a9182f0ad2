"""Tests for faceprint.demo: the built-in demo on the photos bundled with scikit-image / matplotlib."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("skimage", reason="the demo photos come with scikit-image")
pytest.importorskip("matplotlib", reason="the demo photos come with matplotlib")

from faceprint.demo import run_demo, sample_photos  # noqa: E402
from faceprint.gallery import Gallery  # noqa: E402


def test_sample_photos_are_rgb_uint8() -> None:
    photos = sample_photos()
    assert set(photos) == {"Eileen Collins", "Grace Hopper", "stranger (cameraman)"}
    for img in photos.values():
        assert img.dtype.name == "uint8" and img.ndim == 3 and img.shape[2] == 3


@pytest.mark.real
def test_demo_bundled_photos_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yunet: object, sface: object
) -> None:
    empty = tmp_path / "no-datasets"
    empty.mkdir()
    monkeypatch.setenv("FACEPRINT_DATA", str(empty))  # no LFW: only the bundled photos are used
    buf = io.StringIO()
    db = tmp_path / "g.db"

    assert run_demo(Console(file=buf, width=200), gallery=db, threads=2) is True

    text = buf.getvalue()
    assert "Eileen Collins" in text
    assert "Grace Hopper" in text
    assert "unknown" in text
    assert "LFW" not in text  # no LFW rows without the data set
    assert "WRONG" not in text
    with Gallery(db) as g:  # the enrolled people stay in the gallery that was passed in
        assert sorted(s.name for s in g.subjects()) == ["Eileen Collins", "Grace Hopper"]


@pytest.mark.real
def test_demo_rerun_on_same_gallery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yunet: object, sface: object
) -> None:
    empty = tmp_path / "no-datasets"
    empty.mkdir()
    monkeypatch.setenv("FACEPRINT_DATA", str(empty))
    db = tmp_path / "g.db"
    for _ in range(2):  # re-enrolls over its own earlier run instead of piling up templates
        assert run_demo(Console(file=io.StringIO(), width=200), gallery=db) is True
    with Gallery(db) as g:
        assert [s.n_templates for s in g.subjects()] == [1, 1]
