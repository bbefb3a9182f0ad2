"""What is particular to the Milvus backend (the shared behaviour is tests/test_gallery_contract.py,
which runs on a Milvus Lite file and over gRPC against a ``milvus-lite server`` on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="the [milvus] extra is not installed (make test installs it)")

from pymilvus import DataType, MilvusClient  # noqa: E402

from faceprint.errors import GalleryError, InvalidSubjectError, TemplateKeyError  # noqa: E402
from faceprint.gallery import MilvusGallery, open_gallery  # noqa: E402
from faceprint.gallery.milvus import MILVUS_FORMAT  # noqa: E402

FP = "milvus-test-v1"


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_hostile_names_never_reach_a_filter(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = ['a" || id > 0 || name == "', "b\\", "[red]x[/red]", "名前", "x' or 1=1 --", 'id in [1]']
    with open_gallery(f"milvus-lite:///{tmp_path / 'h.db'}") as g:
        e = {n: unit(rng, 1) for n in names}
        for n in names:
            g.enroll(n, e[n], fingerprint=FP)
        assert sorted(s.name for s in g.subjects()) == sorted(names)
        for n in names:
            assert g.get(n).name == n and n in g
            assert g.search(e[n][0], k=1, threshold=0.5, fingerprint=FP)[0].name == n
        g.rename(names[0], 'c" or "1" == "1')
        assert 'c" or "1" == "1' in g and names[0] not in g and len(g) == len(names)
        assert g.remove(names[1]) == 1
        assert len(g) == len(names) - 1 and g.n_templates == len(names) - 1


def test_record_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    rng = np.random.default_rng(1)
    with open_gallery(f"milvus-lite:///{path}?collection=faces") as g:
        assert isinstance(g, MilvusGallery) and g.path == f"milvus-lite:///{path}?collection=faces"
        a = g.enroll("ann", unit(rng, 2), fingerprint=FP)
        b = g.enroll("bob", unit(rng, 1), fingerprint=FP)
        ids = [x.id for x in g.examples()]
    assert b.id > a.id and ids == sorted(ids) and len(set(ids)) == 3 and all(0 < i < 2**63 for i in ids)
    client = MilvusClient(str(path))
    try:
        assert set(client.list_collections()) == {"faces", "faces_subjects"}
        client.load_collection("faces_subjects")
        (record,) = client.query("faces_subjects", filter="id == 0", output_fields=["metadata"])
        assert f'"format": "{MILVUS_FORMAT}"' in record["metadata"] and '"dim": 8' in record["metadata"]
        fields = {f["name"]: f for f in client.describe_collection("faces")["fields"]}
        assert fields["vector"]["params"]["dim"] == 8
        index = client.describe_index("faces", "vector")
        assert index["index_type"] == "HNSW" and index["metric_type"] == "COSINE"
    finally:
        client.close()


def test_last_subject_gone_drops_the_templates_collection(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    with open_gallery(f"milvus-lite:///{tmp_path / 'd.db'}") as g:
        g.enroll("ann", unit(rng, 1, dim=8), fingerprint=FP)
        g.remove("ann")
        assert g.fingerprint is None and g.dim is None and g.n_templates == 0
        g.enroll("ann", unit(rng, 1, dim=4), fingerprint="another-model")  # a new model may come
        assert g.dim == 4 and g.fingerprint == "another-model"


def test_foreign_collection_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    client = MilvusClient(str(path))
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("theirs", schema=schema)
    client.close()
    with pytest.raises(GalleryError, match="exists but is not a faceprint gallery"):
        open_gallery(f"milvus-lite:///{path}?collection=theirs")


def test_storage_limits_are_clear_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with open_gallery(f"milvus-lite:///{tmp_path / 'l.db'}") as g:
        with pytest.raises(InvalidSubjectError, match="at most 65535 bytes"):
            g.enroll("ann", unit(rng, 1), fingerprint=FP, sources=["x" * 70_000])
        with pytest.raises(InvalidSubjectError, match="metadata may have at most"):
            g.enroll("ann", unit(rng, 1), fingerprint=FP, metadata={"note": "y" * 70_000})
        assert len(g) == 0 and g.fingerprint is None  # nothing written


def test_template_key_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TemplateKeyError, match="cannot encrypt"):
        open_gallery(f"milvus-lite:///{tmp_path / 'k.db'}", template_key=bytes(32))
    monkeypatch.setenv("FACEPRINT_TEMPLATE_KEY", "00" * 32)
    with pytest.raises(TemplateKeyError):
        open_gallery(f"milvus-lite:///{tmp_path / 'k.db'}")
    assert not (tmp_path / "k.db").exists()


def test_unreachable_server_is_a_clean_error_and_no_token_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    monkeypatch.setenv("FACEPRINT_MILVUS_TOKEN", "root:sup3r-secret")
    with pytest.raises(GalleryError) as info:
        open_gallery(f"milvus://127.0.0.1:{port}/faces?timeout=2")
    assert time.monotonic() - start < 30
    assert f"milvus://127.0.0.1:{port}/faces" in str(info.value) and "sup3r-secret" not in str(info.value)


def test_server_options(milvus_server: str) -> None:
    with open_gallery(f"milvus://{milvus_server}/opts?ef=64&connectivity=8&expansion_add=40") as g:
        assert isinstance(g, MilvusGallery) and g.ef == 64 and g.path == f"milvus://{milvus_server}/opts"
        assert "opts" in repr(g)
        g.enroll("ann", unit(np.random.default_rng(4), 1), fingerprint=FP)
    client = MilvusClient(uri=f"http://{milvus_server}")
    try:
        params = client.describe_index("opts", "vector")  # Milvus Lite does not report M / efConstruction
        assert params["index_type"] == "HNSW" and params["metric_type"] == "COSINE"
    finally:
        client.close()


def test_cli_gallery_commands_take_a_milvus_url(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceprint.cli import app

    url = f"milvus-lite:///{tmp_path / 'cli.db'}"
    with open_gallery(url) as g:
        g.enroll("[bold]ann[/bold]", unit(np.random.default_rng(5), 2), fingerprint=FP)
    runner = CliRunner()
    listed = runner.invoke(app, ["gallery", "list", "--gallery", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(s["name"], s["templates"]) for s in json.loads(listed.stdout)["subjects"]] == [("[bold]ann[/bold]", 2)]
    renamed = runner.invoke(app, ["gallery", "rename", "[bold]ann[/bold]", "anne", "--gallery", url])
    assert renamed.exit_code == 0, renamed.output
    removed = runner.invoke(app, ["gallery", "remove", "anne", "--gallery", url])
    assert removed.exit_code == 0, removed.output
    with open_gallery(url) as g:
        assert len(g) == 0
    bad = runner.invoke(app, ["gallery", "list", "--gallery", "milvus://127.0.0.1:1/x?timeout=1"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "milvus://127.0.0.1:1/x" in bad.output
