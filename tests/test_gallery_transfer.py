"""Gallery export / import (faceprint.gallery.transfer): a round trip keeps everything a gallery knows; a file
of another embedder, a tampered, truncated or foreign file, a missing or wrong key are refused, before anything
is written."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from faceprint.errors import (
    EmbedderMismatchError,
    InvalidExportError,
    InvalidSubjectError,
    SubjectExistsError,
    TemplateKeyError,
)
from faceprint.gallery import open_gallery
from faceprint.gallery.base import GalleryBackend
from faceprint.gallery.transfer import export_gallery, import_gallery, read_export
from faceprint.retention import purge_expired

FP = "toy@1"
KEY = bytes(range(32))


def unit(rng: np.random.Generator, n: int, d: int = 8) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _gallery() -> GalleryBackend:
    return open_gallery("sqlite://", template_key=None)


def _filled(rng: np.random.Generator) -> GalleryBackend:
    g = _gallery()
    old = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat()
    g.enroll("ann", unit(rng, 2), fingerprint=FP, metadata={"team": "a", "n": [1, 2]},
             sources=["ann/1.jpg", None], content_sha256=["aa" * 32, None], created_at=[old, old])
    g.enroll("ann", unit(rng, 1), fingerprint=FP, sources=["ann/3.jpg"], content_sha256=["cc" * 32])
    g.enroll("bob [red] / zoë", unit(rng, 1), fingerprint=FP)
    g.create("empty")
    return g


def _export(g: GalleryBackend, key: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    export_gallery(g, buf, key=key)
    return buf.getvalue()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes], *, recompute: bool = False, compression: int = zipfile.ZIP_STORED) -> bytes:
    if recompute:
        members = dict(members)
        members["checksum.json"] = json.dumps(
            {k: hashlib.sha256(members[k]).hexdigest() for k in ("manifest.json", "templates.bin")}
        ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _state(g: GalleryBackend) -> list[tuple]:
    return [
        (s.name, s.metadata, s.n_templates, [(e.source, e.content_sha256, e.created_at) for e in g.examples(s.name)],
         g.templates(s.name).tobytes())
        for s in g.subjects()
    ]


def test_a_round_trip_keeps_names_metadata_templates_sources_digests_and_times() -> None:
    rng = np.random.default_rng(0)
    with _filled(rng) as g:
        data = _export(g)
        before = _state(g)
    with _gallery() as h:
        done = import_gallery(h, io.BytesIO(data), fingerprint=FP)
        assert sorted(done.subjects_created) == ["ann", "bob [red] / zoë", "empty"]
        assert done.templates_added == 4 and done.templates_skipped == 0 and done.fingerprint == FP
        assert _state(h) == before
        assert h.fingerprint == FP
        probe = h.templates("bob [red] / zoë")[0]
        assert h.search(probe, k=1, threshold=0.5, fingerprint=FP)[0].name == "bob [red] / zoë"


def test_an_encrypted_round_trip_needs_the_key_and_keeps_everything() -> None:
    rng = np.random.default_rng(1)
    with _filled(rng) as g:
        data = _export(g, key=KEY)
        before = _state(g)
        plain_vectors = g.templates("ann").tobytes()
    assert plain_vectors not in data and plain_vectors[:32] not in data  # templates are not in clear
    with pytest.raises(TemplateKeyError, match="encrypted"):
        read_export(io.BytesIO(data))
    with pytest.raises(TemplateKeyError, match="another key"):
        read_export(io.BytesIO(data), key=bytes(32))
    with _gallery() as h:
        import_gallery(h, io.BytesIO(data), key=KEY)
        assert _state(h) == before


def test_importing_into_a_gallery_of_another_embedder_is_refused_before_anything_is_written() -> None:
    rng = np.random.default_rng(2)
    with _filled(rng) as g:
        data = _export(g)
    with _gallery() as h:
        h.enroll("zed", unit(rng, 1), fingerprint="other@2")
        with pytest.raises(EmbedderMismatchError, match="toy@1"):
            import_gallery(h, io.BytesIO(data))
        assert [s.name for s in h.subjects()] == ["zed"]
    with _gallery() as empty:
        with pytest.raises(EmbedderMismatchError, match="this service"):
            import_gallery(empty, io.BytesIO(data), fingerprint="other@2")
        assert len(empty) == 0
    with _gallery() as h:  # same fingerprint, other dimension
        h.enroll("zed", unit(rng, 1, d=4), fingerprint=FP)
        with pytest.raises(EmbedderMismatchError, match="dimensions"):
            import_gallery(h, io.BytesIO(data))


def test_name_conflicts_error_skip_or_merge_and_a_second_merge_adds_nothing() -> None:
    rng = np.random.default_rng(3)
    with _filled(rng) as g:
        data = _export(g)
    with _gallery() as h:
        h.enroll("ann", unit(rng, 1), fingerprint=FP, metadata={"team": "b", "mine": 1})
        with pytest.raises(SubjectExistsError, match="'ann'.*nothing was imported"):
            import_gallery(h, io.BytesIO(data))
        assert [s.name for s in h.subjects()] == ["ann"]
        skipped = import_gallery(h, io.BytesIO(data), on_conflict="skip")
        assert skipped.subjects_skipped == ("ann",) and skipped.templates_skipped == 3
        assert h.get("ann").n_templates == 1 and "bob [red] / zoë" in h and "empty" in h
    with _gallery() as h:
        h.enroll("ann", unit(rng, 1), fingerprint=FP, metadata={"team": "b", "mine": 1})
        merged = import_gallery(h, io.BytesIO(data), on_conflict="merge")
        assert merged.subjects_merged == ("ann",) and merged.templates_added == 4
        assert h.get("ann").n_templates == 4 and h.get("ann").metadata == {"team": "a", "n": [1, 2], "mine": 1}
        again = import_gallery(h, io.BytesIO(data), on_conflict="merge")
        assert again.templates_added == 0 and again.templates_skipped == 4  # nothing is stored twice
        assert h.get("ann").n_templates == 4 and h.get("ann").metadata == {"team": "a", "n": [1, 2], "mine": 1}


@pytest.mark.parametrize("damage", ["flip_template", "flip_manifest", "truncate", "random", "empty", "members",
                                    "compressed", "format", "counts"])
def test_damaged_or_foreign_files_are_refused_with_a_reason(damage: str) -> None:
    rng = np.random.default_rng(4)
    with _filled(rng) as g:
        data = _export(g)
    m = _members(data)
    if damage == "flip_template":
        t = bytearray(m["templates.bin"])
        t[5] ^= 1
        bad = _zip({**m, "templates.bin": bytes(t)})
    elif damage == "flip_manifest":
        bad = _zip({**m, "manifest.json": m["manifest.json"].replace(b'"ann"', b'"anx"')})
    elif damage == "truncate":
        bad = data[: len(data) // 2]
    elif damage == "random":
        bad = np.random.default_rng(0).bytes(5000)
    elif damage == "empty":
        bad = b""
    elif damage == "members":
        bad = _zip({**m, "extra.txt": b"hi"})
    elif damage == "compressed":
        bad = _zip(m, compression=zipfile.ZIP_DEFLATED)
    elif damage == "format":
        bad = _zip({**m, "manifest.json": m["manifest.json"].replace(b"export/1", b"export/9")}, recompute=True)
    else:
        manifest = json.loads(m["manifest.json"])
        manifest["n_templates"] = 3
        bad = _zip({**m, "manifest.json": json.dumps(manifest).encode()}, recompute=True)
    with _gallery() as h:
        with pytest.raises(InvalidExportError) as err:
            import_gallery(h, io.BytesIO(bad))
        assert len(h) == 0
    assert len(str(err.value)) < 400


def test_an_encrypted_export_edited_with_recomputed_checksums_fails_authentication_a_plain_one_does_not() -> None:
    rng = np.random.default_rng(5)
    with _filled(rng) as g:
        plain, sealed = _export(g), _export(g, key=KEY)
    for data, key in ((plain, None), (sealed, KEY)):
        m = _members(data)
        forged = _zip({**m, "manifest.json": m["manifest.json"].replace(b'"ann"', b'"eve"')}, recompute=True)
        if key is None:  # the documented limit: checksums catch damage, not a forger of a plain file
            assert "eve" in [s.name for s in read_export(io.BytesIO(forged)).subjects]
        else:
            with pytest.raises(InvalidExportError, match="authentication"):
                read_export(io.BytesIO(forged), key=key)


def test_bad_vectors_or_times_in_a_forged_file_are_refused() -> None:
    rng = np.random.default_rng(6)
    with _filled(rng) as g:
        m = _members(_export(g))
    t = np.frombuffer(m["templates.bin"], dtype="<f4").copy()
    t[0] = np.nan
    with pytest.raises(Exception, match="finite|NaN"):
        read_export(io.BytesIO(_zip({**m, "templates.bin": t.tobytes()}, recompute=True)))
    manifest = json.loads(m["manifest.json"])
    manifest["subjects"][0]["templates"][0]["created_at"] = "2999-01-01T00:00:00+00:00"
    with pytest.raises(InvalidSubjectError, match="future"):
        read_export(io.BytesIO(_zip({**m, "manifest.json": json.dumps(manifest).encode()}, recompute=True)))


def test_retention_counts_from_the_first_enrollment_after_an_import() -> None:
    rng = np.random.default_rng(7)
    with _filled(rng) as g:
        data = _export(g)
    with _gallery() as h:
        import_gallery(h, io.BytesIO(data))
        done = purge_expired(h, 30)
        assert done.templates_removed == 2 and h.get("ann").n_templates == 1


def test_export_to_a_path_is_atomic_and_a_path_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    with _filled(rng) as g:
        summary = export_gallery(g, tmp_path / "out.zip")
    assert summary.n_subjects == 3 and summary.n_templates == 4 and not summary.encrypted
    assert summary.n_bytes == (tmp_path / "out.zip").stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
    assert read_export(tmp_path / "out.zip").n_templates == 4
    with pytest.raises(InvalidExportError, match="not a regular file"):
        read_export(tmp_path)
    with pytest.raises(InvalidExportError, match="over the limit"):
        read_export(tmp_path / "out.zip", max_bytes=100)


def test_an_empty_gallery_exports_and_imports() -> None:
    with _gallery() as g:
        data = _export(g)
    with _gallery() as h:
        done = import_gallery(h, io.BytesIO(data), fingerprint=FP)
        assert done.subjects_created == () and len(h) == 0 and h.fingerprint is None


def test_cli_export_then_import_with_the_key_from_the_environment_and_refusals_as_messages(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceprint.cli import app as cli

    rng = np.random.default_rng(9)
    src, dst, out = tmp_path / "src.db", tmp_path / "dst.db", tmp_path / "people.zip"
    key_env = {"FACEPRINT_TEMPLATE_KEY": KEY.hex()}
    with open_gallery(src, template_key=KEY) as g:
        g.enroll("ann [b]", unit(rng, 2), fingerprint=FP, metadata={"k": 1})
    runner = CliRunner()
    done = runner.invoke(cli, ["gallery", "export", str(out), "--gallery", str(src), "--json"], env=key_env)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["encrypted"] is True and json.loads(done.stdout)["templates"] == 2
    no_key = runner.invoke(cli, ["gallery", "import", str(out), "--gallery", str(tmp_path / "x.db")])
    assert no_key.exit_code != 0 and "encrypted" in no_key.output and "Traceback" not in no_key.output
    first = runner.invoke(cli, ["gallery", "import", str(out), "--gallery", str(dst)], env=key_env)
    assert first.exit_code == 0 and "1 new subject(s)" in first.output, first.output
    again = runner.invoke(cli, ["gallery", "import", str(out), "--gallery", str(dst)], env=key_env)
    assert again.exit_code != 0 and "already in the gallery" in again.output and "'ann [b]'" in again.output
    merged = runner.invoke(cli, ["gallery", "import", str(out), "--gallery", str(dst), "--on-conflict", "merge",
                                 "--json"], env=key_env)
    assert merged.exit_code == 0 and json.loads(merged.stdout)["templates_added"] == 0, merged.output
    bad = runner.invoke(cli, ["gallery", "import", str(out), "--gallery", str(dst), "--on-conflict", "nope"])
    assert bad.exit_code != 0 and "--on-conflict" in bad.output
    with open_gallery(dst, template_key=KEY) as h:
        assert h.get("ann [b]").metadata == {"k": 1} and h.get("ann [b]").n_templates == 2
