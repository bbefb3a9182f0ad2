"""Subjects without templates and single templates ("examples"): create, list with paging, read, delete."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import (
    ExampleNotFoundError,
    GalleryError,
    InvalidArgumentError,
    SubjectExistsError,
    SubjectNotFoundError,
)
from faceprint.gallery import Gallery, open_gallery

E = np.eye(6, dtype=np.float32)
FP = "demo@1"


def _filled(path: str | Path = ":memory:") -> Gallery:
    g = Gallery(path)
    g.enroll("ann", E[:2], fingerprint=FP, sources=["a1.jpg", "a2.jpg"])
    g.enroll("bob", E[2:5], fingerprint=FP)
    return g


def test_create_makes_a_subject_without_templates() -> None:
    with Gallery(":memory:") as g:
        s = g.create("zoe", metadata={"team": "x"})
        assert (s.name, s.n_templates, s.metadata) == ("zoe", 0, {"team": "x"})
        assert g.search(E[0], k=3, threshold=0.5, fingerprint=FP) == []  # no template, no fingerprint yet
        with pytest.raises(SubjectExistsError, match="zoe"):
            g.create(" zoe ")
        g.add("zoe", E[0], fingerprint=FP)
        assert [m.name for m in g.search(E[0], k=1, threshold=0.5, fingerprint=FP)] == ["zoe"]


def test_examples_list_pages_and_counts() -> None:
    with _filled() as g:
        every = g.examples()
        assert [(e.subject, e.source) for e in every] == [("ann", "a1.jpg"), ("ann", "a2.jpg"), ("bob", None),
                                                           ("bob", None), ("bob", None)]
        assert [e.id for e in every] == sorted(e.id for e in every)
        assert g.examples(offset=1, limit=2) == every[1:3]
        assert g.examples("bob", offset=2) == every[4:]
        assert g.examples(limit=0) == [] and g.count_examples() == 5 and g.count_examples("ann") == 2
        assert g.examples(g.get("ann").id) == every[:2]
        with pytest.raises(SubjectNotFoundError):
            g.examples("nobody")
        with pytest.raises(InvalidArgumentError):
            g.examples(offset=-1)


def test_example_returns_the_stored_vector() -> None:
    with _filled() as g:
        for e in g.examples():
            record, vector = g.example(e.id)
            assert record == e
            assert any(np.array_equal(vector, row) for row in g.templates(e.subject))
        with pytest.raises(ExampleNotFoundError):
            g.example(999)


def test_remove_examples_is_all_or_nothing_and_search_follows(tmp_path: Path) -> None:
    with _filled(tmp_path / "g.db") as g:
        ann = g.examples("ann")
        assert g.search(E[0], k=1, threshold=0.5, fingerprint=FP)[0].name == "ann"  # builds the index
        with pytest.raises(ExampleNotFoundError, match="nothing was deleted"):
            g.remove_examples([ann[0].id, 999])
        assert g.count_examples() == 5
        assert g.remove_examples([ann[0].id, ann[0].id]) == [ann[0]]
        best = g.search(E[0], k=2, threshold=0.5, fingerprint=FP)
        assert all(m.similarity < 0.5 for m in best)  # the removed template is not found any more
        assert g.search(E[1], k=1, threshold=0.5, fingerprint=FP)[0].name == "ann"
        g.remove_examples([ann[1].id])
        assert g.get("ann").n_templates == 0 and "ann" in g  # the subject stays
        assert g.search(E[1], k=1, threshold=0.5, fingerprint=FP)[0].name == "bob"
    with open_gallery(tmp_path / "g.db") as again:  # written to the file
        assert again.count_examples() == 3 and again.count_examples("ann") == 0


def test_rename_onto_a_taken_name_is_a_subject_exists_error() -> None:
    with _filled() as g:
        with pytest.raises(SubjectExistsError) as info:
            g.rename("ann", "bob")
        assert isinstance(info.value, GalleryError)  # what callers caught before


def test_merge_moves_every_template_and_search_follows() -> None:
    with _filled() as g:
        assert g.search(E[0], k=1, threshold=0.5, fingerprint=FP)[0].name == "ann"  # builds the index
        bob = g.get("bob")
        merged = g.merge("ann", "bob")
        assert (merged.id, merged.name, merged.n_templates) == (bob.id, "bob", 5)
        assert "ann" not in g and [e.subject for e in g.examples()] == ["bob"] * 5
        assert g.search(E[0], k=1, threshold=0.5, fingerprint=FP)[0].name == "bob"
        with pytest.raises(InvalidArgumentError):
            g.merge("bob", bob.id)
        with pytest.raises(SubjectNotFoundError):
            g.merge("nobody", "bob")
