"""API keys (faceprint.keys) and `faceprint keys create | list | revoke`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceprint.cli import app
from faceprint.errors import InvalidArgumentError, KeyNotFoundError
from faceprint.keys import ROLES, KeyStore, role_allows, validate_collection


def test_a_key_is_stored_as_the_sha256_of_its_secret_only(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with KeyStore(path) as store:
        key, token = store.create("enroll", collection="shop", label="till 3")
    prefix, key_id, secret = token.split("_", 2)
    assert (prefix, key_id) == ("fp", key.id) and len(secret) >= 43
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in raw and token.encode() not in raw
    with sqlite3.connect(path) as conn:
        (digest,) = conn.execute("SELECT digest FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    assert digest == hashlib.sha256(secret.encode()).hexdigest()
    assert path.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_authenticate_accepts_the_token_only(tmp_path: Path) -> None:
    with KeyStore(tmp_path / "keys.db") as store:
        key, token = store.create("recognize")
        other, other_token = store.create("admin", collection="b")
        assert store.authenticate(token) is not None and store.authenticate(token).id == key.id  # type: ignore[union-attr]
        prefix, key_id, secret = token.split("_", 2)
        flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
        for wrong in (None, "", token + "x", f"fp_{key_id}_{flipped}", f"fp_{other.id}_{secret}", "fp_x_y",
                      token.upper(), f"fp_{'0' * 12}_{secret}"):
            assert store.authenticate(wrong) is None, wrong
        assert store.authenticate(other_token).collection == "b"  # type: ignore[union-attr]


def test_secrets_with_underscores_and_dashes_authenticate() -> None:
    # the URL-safe alphabet has '_' and '-': a secret may hold (or start with) the separator
    with KeyStore(":memory:") as store:
        tokens = [store.create("recognize")[1] for _ in range(40)]
        assert all(store.authenticate(t) is not None for t in tokens)
    assert any("_" in t.split("_", 2)[2] for t in tokens) and any("-" in t for t in tokens)


def test_revoke_and_last_use(tmp_path: Path) -> None:
    with KeyStore(tmp_path / "keys.db") as store:
        key, token = store.create("admin")
        assert store.get(key.id).last_used_at is None
        store.authenticate(token)
        used = store.get(key.id).last_used_at
        assert used is not None
        revoked = store.revoke(key.id)
        assert revoked.revoked_at is not None and not revoked.active
        assert store.authenticate(token) is None
        assert store.revoke(key.id).revoked_at == revoked.revoked_at  # twice: the first time stays
        assert [k.id for k in store.list()] == [key.id]
        with pytest.raises(KeyNotFoundError, match="nope"):
            store.revoke("nope")


def test_roles_are_ordered_and_names_checked() -> None:
    assert ROLES == ("recognize", "enroll", "admin")
    assert role_allows("admin", "recognize") and role_allows("enroll", "enroll") and not role_allows("enroll", "admin")
    with pytest.raises(InvalidArgumentError, match="valid roles"):
        role_allows("root", "admin")
    for bad in ("", "Shop", "../x", "a b", "x" * 65, 3):
        with pytest.raises(InvalidArgumentError):
            validate_collection(bad)
    with KeyStore(":memory:") as store:
        with pytest.raises(InvalidArgumentError):
            store.create("admin", collection="../etc")
        with pytest.raises(InvalidArgumentError):
            store.create("admin", label="a\nb")


def test_cli_keys_create_prints_the_key_once_list_and_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--role", "admin", "--keys", db])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert token.startswith("fp_")
    assert "shown only now" in made.stderr
    listed = runner.invoke(app, ["keys", "list", "--keys", db])
    key_id, secret = token.split("_", 2)[1:]
    assert listed.exit_code == 0 and key_id in listed.stdout and secret not in listed.stdout
    assert "never" in listed.stdout
    as_json = json.loads(runner.invoke(app, ["keys", "list", "--json", "--keys", db]).stdout)
    assert as_json["keys"][0]["role"] == "admin" and as_json["keys"][0]["revoked_at"] is None
    revoked = runner.invoke(app, ["keys", "revoke", token.split("_")[1], "--keys", db])
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    with KeyStore(db) as store:
        assert store.authenticate(token) is None


def test_cli_keys_refuses_bad_input_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEPRINT_GALLERY", str(tmp_path / "g" / "gallery.db"))
    runner = CliRunner()
    for args in (["keys", "create", "--role", "root"], ["keys", "create", "--role", "admin", "--collection", "A/B"],
                 ["keys", "revoke", "000000000000"]):
        done = runner.invoke(app, args)
        assert done.exit_code == 2, (args, done.output)
        assert done.stderr.startswith("error:") and done.stderr.count("\n") == 1, done.stderr
    # the default store lies beside the gallery
    assert runner.invoke(app, ["keys", "create", "--role", "enroll"]).exit_code == 0
    assert (tmp_path / "g" / "keys.db").is_file()


def test_cli_serve_refuses_bad_options_before_starting(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, words in ((["--workers", "0"], "--workers"), (["--port", "0"], "--port"), (["--threads", "0"],
                        "FACEPRINT_SERVICE_THREADS")):
        done = runner.invoke(app, ["serve", "--gallery", str(tmp_path / "g.db"), *args])
        assert done.exit_code == 2 and words in done.stderr, done.output
