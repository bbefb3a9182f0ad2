"""Score normalisation (faceprint.scorenorm): AS-norm, Fair Score Normalization, shipped files, pipeline opt-in."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from faceprint import scorenorm
from faceprint.errors import (
    InvalidArgumentError,
    InvalidEmbeddingError,
    InvalidFileError,
    ModelIntegrityError,
    ModelNotFoundError,
    NotFittedError,
    UnknownBackendError,
)
from faceprint.scorenorm import (
    SCORE_NORMALIZERS,
    SHIPPED_SCORE_NORMALIZERS,
    AdaptiveSNorm,
    FairScoreNormalizer,
    ScoreNormalizer,
    get_score_normalizer,
    load_score_normalizer,
)

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def two_clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces of two "groups": group 0 tight (its impostors score high), group 1 spread out."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:2]
    tight = _unit(centres[0] * 1.0 + rng.normal(scale=0.12, size=(n, DIM)))
    spread = _unit(centres[1] * 1.0 + rng.normal(scale=0.25, size=(n, DIM)))
    return np.concatenate([tight, spread]), np.repeat([0, 1], n)


def within_group_fmr(norm: ScoreNormalizer | None, e: np.ndarray, g: np.ndarray, fmr: float) -> list[float]:
    """FMR of each group's within-group pairs at the threshold matched to ``fmr`` on every cross pair."""
    s = e @ e.T
    if norm is not None:
        st = norm.side_stats(e)
        s = norm.combine(s, st[:, None, :], st[None, :, :])
    iu = np.triu_indices(len(e), k=1)
    thr = np.quantile(s[iu], 1 - fmr)
    out = []
    for k in (0, 1):
        idx = np.flatnonzero(g == k)
        sub = s[np.ix_(idx, idx)][np.triu_indices(idx.size, k=1)]
        out.append(float((sub >= thr).mean()))
    return out


@pytest.fixture(scope="module")
def fit_set() -> tuple[np.ndarray, np.ndarray]:
    return two_clusters(150, seed=1)


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return two_clusters(150, seed=2)


def test_registry_lists_both_methods() -> None:
    assert SCORE_NORMALIZERS.names() == ["fsn", "s-norm"]
    assert isinstance(SCORE_NORMALIZERS.create("s-norm", top_k=10), AdaptiveSNorm)
    assert isinstance(SCORE_NORMALIZERS.create("fsn"), FairScoreNormalizer)
    with pytest.raises(UnknownBackendError, match="fsn, s-norm"):
        get_score_normalizer("z-norm")


def test_planted_group_offset_is_large_raw(fit_set, test_set) -> None:
    e, g = test_set
    tight, spread = within_group_fmr(None, e, g, 0.05)
    assert tight > 10 * max(spread, 1e-3), (tight, spread)


def test_s_norm_reduces_a_planted_cluster_offset(fit_set, test_set) -> None:
    norm = AdaptiveSNorm(top_k=20, cohort_size=300).fit(fit_set[0], model="toy")
    e, g = test_set
    raw = within_group_fmr(None, e, g, 0.05)
    after = within_group_fmr(norm, e, g, 0.05)
    assert max(after) / max(min(after), 1e-4) < 0.2 * (max(raw) / max(min(raw), 1e-4)), (raw, after)
    assert max(after) / min(after) < 3.0, after


def test_s_norm_matches_its_formula() -> None:
    rng = np.random.default_rng(3)
    cohort = _unit(rng.normal(size=(40, DIM)))
    norm = AdaptiveSNorm(top_k=5, cohort_size=40).fit(cohort, model="toy")
    a, b = _unit(rng.normal(size=(3, DIM))), _unit(rng.normal(size=(3, DIM)))
    c = norm.cohort_.astype(np.float64)
    want = []
    for x, y in zip(a, b):
        s = float(x @ y)
        ta, tb = np.sort(c @ x)[-5:], np.sort(c @ y)[-5:]
        want.append(0.5 * ((s - ta.mean()) / ta.std() + (s - tb.mean()) / tb.std()))
    np.testing.assert_allclose(norm.normalize(a, b), want, rtol=1e-4, atol=1e-4)


def test_fsn_offsets_follow_impostor_density(fit_set, test_set) -> None:
    norm = FairScoreNormalizer(n_clusters=2, fmr=0.01, min_pairs=100).fit(fit_set[0], model="toy")
    e, g = test_set
    clusters = np.argmax(e @ norm.centres_.astype(np.float64).T, axis=1)
    tight_c = np.bincount(clusters[g == 0], minlength=2).argmax()
    assert norm.offsets_[tight_c] > 0 > norm.offsets_[1 - tight_c], norm.offsets_
    raw = within_group_fmr(None, e, g, 0.05)
    after = within_group_fmr(norm, e, g, 0.05)
    assert max(after) / max(min(after), 1e-4) < 0.2 * (max(raw) / max(min(raw), 1e-4)), (raw, after)
    # s' = s - (delta(c(a)) + delta(c(b))) / 2, checked pair by pair
    a, b = e[:5], e[-5:]
    want = [float(x @ y) - 0.5 * (norm.offsets_[cx] + norm.offsets_[cy])
            for x, y, cx, cy in zip(a, b, clusters[:5], clusters[-5:])]
    np.testing.assert_allclose(norm.normalize(a, b), want, rtol=1e-6, atol=1e-6)


def test_fsn_identities_leave_out_genuine_pairs() -> None:
    rng = np.random.default_rng(4)
    people = _unit(rng.normal(size=(60, DIM)))
    e = _unit(np.repeat(people, 3, axis=0) + rng.normal(scale=0.05, size=(180, DIM)))
    ids = np.repeat(np.arange(60), 3).astype(str)
    with_ids = FairScoreNormalizer(n_clusters=1, fmr=0.01, min_pairs=10).fit(e, ids, model="toy")
    without = FairScoreNormalizer(n_clusters=1, fmr=0.01, min_pairs=10).fit(e, model="toy")
    # the genuine pairs (cosine ~1) lift the 1 % quantile when they are counted as impostors
    assert with_ids.global_threshold_ < 0.6 < without.global_threshold_


def test_save_load_round_trip(tmp_path: Path, fit_set, test_set) -> None:
    e, _ = test_set
    for norm in (AdaptiveSNorm(top_k=10, cohort_size=200).fit(fit_set[0], model="toy"),
                 FairScoreNormalizer(n_clusters=3, fmr=0.01, min_pairs=100).fit(fit_set[0], model="toy")):
        norm.set_thresholds({"1e-2": 0.5, "1e-3": 1.5, "1e-4": 2.5}, source="unit test")
        path = norm.save(tmp_path / f"{norm.method}.npz")
        back = load_score_normalizer(path)
        assert type(back) is type(norm)
        assert back.key == norm.key and back.fingerprint == norm.fingerprint
        assert back.thresholds_ == norm.thresholds_ and back.threshold("1e-3") == 1.5
        assert back.about_["thresholds"] == "unit test" and back.model_ == "toy"  # type: ignore[attr-defined]
        np.testing.assert_array_equal(back.normalize(e[:50], e[50:100]), norm.normalize(e[:50], e[50:100]))
        again = norm.save(tmp_path / f"{norm.method}_again.npz")  # fixed zip timestamps: same bytes
        assert again.read_bytes() == path.read_bytes()


def test_fingerprint_changes_with_the_fit(fit_set, test_set) -> None:
    a = AdaptiveSNorm(top_k=10, cohort_size=200).fit(fit_set[0], model="toy")
    b = AdaptiveSNorm(top_k=10, cohort_size=200).fit(test_set[0], model="toy")
    assert a.key == b.key and a.fingerprint != b.fingerprint


def test_bad_input_errors(tmp_path: Path, fit_set) -> None:
    with pytest.raises(NotFittedError):
        AdaptiveSNorm().normalize(np.ones((1, DIM)), np.ones((1, DIM)))
    with pytest.raises(NotFittedError):
        FairScoreNormalizer().side_stats(np.ones((1, DIM)))
    norm = AdaptiveSNorm(top_k=10, cohort_size=200).fit(fit_set[0], model="toy")
    nan = np.full((1, DIM), np.nan)
    with pytest.raises(InvalidEmbeddingError, match="NaN"):
        norm.normalize(nan, np.ones((1, DIM)))
    with pytest.raises(InvalidEmbeddingError, match=f"\\(n, {DIM}\\)"):
        norm.normalize(np.ones((1, DIM + 1)), np.ones((1, DIM + 1)))
    with pytest.raises(InvalidEmbeddingError, match="one shape"):
        norm.normalize(np.ones((2, DIM)), np.ones((1, DIM)))
    with pytest.raises(InvalidArgumentError, match="scores"):
        norm.normalize(np.ones((2, DIM)), np.ones((2, DIM)), [0.1, 0.2, 0.3])
    with pytest.raises(InvalidArgumentError, match="no threshold at fmr='1e-3'"):
        norm.threshold("1e-3")
    with pytest.raises(InvalidArgumentError, match="top_k"):
        AdaptiveSNorm(top_k=1).fit(fit_set[0])
    with pytest.raises(InvalidArgumentError, match="smaller than top_k"):
        AdaptiveSNorm(top_k=50, cohort_size=100).fit(fit_set[0][:20])
    with pytest.raises(InvalidArgumentError, match="too few"):
        FairScoreNormalizer(n_clusters=50).fit(fit_set[0][:20])
    with pytest.raises(InvalidArgumentError, match="fmr"):
        FairScoreNormalizer(n_clusters=2, fmr=0.0).fit(fit_set[0])
    with pytest.raises(InvalidArgumentError, match="identities"):
        FairScoreNormalizer(n_clusters=2).fit(fit_set[0], ["a"])
    with pytest.raises(ModelNotFoundError):
        load_score_normalizer(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(InvalidFileError):
        load_score_normalizer(junk)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array('{"format": "something else"}'))
    with pytest.raises(InvalidFileError, match="format"):
        load_score_normalizer(other)


def test_unshipped_model_is_refused() -> None:
    with pytest.raises(ModelNotFoundError, match="facenet"):
        get_score_normalizer("s-norm", "facenet")


# -- shipped files ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["s-norm", "fsn"])
def test_shipped_normalizer_loads_sha256_checked(method: str) -> None:
    file, sha = SHIPPED_SCORE_NORMALIZERS[("sface", method)]
    path = Path(scorenorm.__file__).parent / "models" / file
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    assert len(data) < 1_000_000
    card = (Path(scorenorm.__file__).parent / "models" / "MODEL_CARD_scorenorm.md").read_text()
    assert sha in card and file in card
    norm = get_score_normalizer(method, "sface")
    assert norm.method == method and norm.model_ == "sface"  # type: ignore[attr-defined]
    assert set(scorenorm.THRESHOLD_KEYS) <= set(norm.thresholds_)
    t = [norm.threshold(k) for k in scorenorm.THRESHOLD_KEYS]
    assert t == sorted(t), t  # a lower FMR needs a higher score
    assert norm.key in card


def test_shipped_normalizer_refuses_a_tampered_file(monkeypatch: pytest.MonkeyPatch) -> None:
    file, _ = SHIPPED_SCORE_NORMALIZERS[("sface", "fsn")]
    monkeypatch.setitem(SHIPPED_SCORE_NORMALIZERS, ("sface", "fsn"), (file, "0" * 64))
    get_score_normalizer.cache_clear()
    try:
        with pytest.raises(ModelIntegrityError, match="sha256"):
            get_score_normalizer("fsn", "sface")
    finally:
        get_score_normalizer.cache_clear()


# -- pipeline opt-in -----------------------------------------------------------------------------
def test_pipeline_default_is_unchanged() -> None:
    from faceprint.pipeline import FacePipeline

    pipe = FacePipeline()
    rng = np.random.default_rng(5)
    a, b = _unit(rng.normal(size=(2, 128))).astype(np.float32)
    v = pipe.compare(a, b)
    assert v.score_norm is None and v.normalized_score is None
    assert set(v.to_dict()) == {"decision", "similarity", "distance", "same", "threshold", "fmr", "model", "liveness"}
    assert v.threshold == pipe.threshold()


@pytest.mark.parametrize("method", ["s-norm", "fsn"])
def test_pipeline_compare_uses_the_normalised_score(method: str) -> None:
    from faceprint.pipeline import FacePipeline, PipelineSpec

    pipe = FacePipeline(score_norm=method)
    norm = get_score_normalizer(method, "sface")
    rng = np.random.default_rng(6)
    base = _unit(rng.normal(size=128))
    for a, b in [(base, _unit(base + rng.normal(scale=0.05, size=128))), tuple(_unit(rng.normal(size=(2, 128))))]:
        v = pipe.compare(a.astype(np.float32), b.astype(np.float32), fmr="1e-2")
        want = float(norm.normalize(a[None], b[None])[0])
        assert v.score_norm == norm.key and v.normalized_score == pytest.approx(want, abs=1e-5)
        assert v.threshold == norm.threshold("1e-2") and v.same == (v.normalized_score >= v.threshold)
        assert v.similarity == pytest.approx(float(a @ b), abs=1e-5)
        d = v.to_dict()
        assert d["score_norm"] == norm.key and d["normalized_score"] == pytest.approx(want, abs=1e-5)
    assert pipe.spec == PipelineSpec(score_norm=method)
    back = pickle.loads(pickle.dumps(pipe))
    assert back.score_norm == method and back.spec == pipe.spec
    with pytest.raises(InvalidArgumentError, match="best_accuracy"):
        pipe.compare(base, base, fmr="best_accuracy")


def test_pipeline_rejects_unknown_or_unshipped_normalisers() -> None:
    from faceprint.embedding import EmbedderSpec
    from faceprint.pipeline import FacePipeline, PipelineSpec

    with pytest.raises(UnknownBackendError, match="fsn, s-norm"):
        FacePipeline(score_norm="t-norm")
    with pytest.raises(UnknownBackendError):
        PipelineSpec(score_norm="t-norm")
    with pytest.raises(ModelNotFoundError, match="sface\\+flip"):
        FacePipeline(embedder=EmbedderSpec("sface", flip=True).build(), score_norm="s-norm")


# -- real faces ---------------------------------------------------------------------------------
LFW_CACHE = Path(__file__).resolve().parents[1] / "bench" / "cache" / "lfw_all_sface.npz"


def _view2_accuracy(embeddings: dict[str, np.ndarray], pairs: list, images: Path) -> dict[str, float]:
    """10-fold accuracy of raw and each shipped normaliser over ``pairs`` (a missing face: NaN score)."""
    from faceprint.evaluation import evaluate_verification

    nan = np.full(128, np.nan)
    a = np.stack([embeddings.get(str(p.path_a.relative_to(images)), nan) for p in pairs])
    b = np.stack([embeddings.get(str(p.path_b.relative_to(images)), nan) for p in pairs])
    ok = ~np.isnan(a[:, 0]) & ~np.isnan(b[:, 0])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    raw = np.full(len(pairs), np.nan)
    raw[ok] = np.einsum("ij,ij->i", a[ok], b[ok])
    out = {"raw": evaluate_verification(raw, same, folds, model="raw").accuracy}
    for method in ("s-norm", "fsn"):
        s = np.full(len(pairs), np.nan)
        s[ok] = get_score_normalizer(method, "sface").normalize(a[ok], b[ok], raw[ok])
        out[method] = evaluate_verification(s, same, folds, model=method).accuracy
    return out


@pytest.fixture(scope="module")
def view2_embeddings(data_root: Path) -> dict[str, np.ndarray]:
    """SFace embeddings (YuNet central face) of every LFW view 2 image, keyed by path under lfw-deepfunneled.

    From the bench cache when it is built (``bench/lfw_embeddings.py``, same detector, selection and
    model), else through the public API: 7,701 images, about 3 minutes on 2 cores.
    """
    from faceprint.datasets import lfw_pairs
    from faceprint.pipeline import FacePipeline

    images = data_root / "lfw" / "lfw-deepfunneled"
    paths = sorted({x for p in lfw_pairs(data_root) for x in (p.path_a, p.path_b)})
    if LFW_CACHE.is_file():
        z = np.load(LFW_CACHE, allow_pickle=False)
        return {str(p): e for p, e in zip(z["paths"], z["sface"]) if not np.isnan(e[0])}
    embs, _ = FacePipeline().embed_many(paths, select="central")
    return {str(p.relative_to(images)): e for p, e in zip(paths, embs) if not np.isnan(e[0])}


@pytest.mark.real
@pytest.mark.data
def test_s_norm_keeps_lfw_view2_accuracy_within_0_1_pt(data_root: Path, view2_embeddings) -> None:
    """Whole view 2 (6,000 pairs, 10 folds): the shipped s-norm within 0.1 pt of raw accuracy (issue 14's bar),
    FSN within 0.2 pt (it costs 0.16 pt: bench/results/score_norm.json)."""
    from faceprint.datasets import lfw_pairs

    acc = _view2_accuracy(view2_embeddings, lfw_pairs(data_root), data_root / "lfw" / "lfw-deepfunneled")
    assert acc["raw"] > 0.99, acc
    assert acc["s-norm"] >= acc["raw"] - 0.001, acc
    assert acc["fsn"] >= acc["raw"] - 0.002, acc


@pytest.mark.real
@pytest.mark.data
def test_normalised_verification_on_real_faces(data_root: Path, view2_embeddings) -> None:
    """The pipeline's normalised decisions on real view 2 pairs are the normaliser's at its threshold."""
    from faceprint.datasets import lfw_pairs
    from faceprint.pipeline import FacePipeline

    pairs = lfw_pairs(data_root)
    subset = [p for f in range(10) for same in (True, False) for p in [q for q in pairs if q.fold == f
                                                                       and q.same == same][:3]]
    images = data_root / "lfw" / "lfw-deepfunneled"
    pipe = FacePipeline(score_norm="s-norm")
    norm = get_score_normalizer("s-norm", "sface")
    checked = 0
    for p in subset:
        a, b = view2_embeddings.get(str(p.path_a.relative_to(images))), view2_embeddings.get(
            str(p.path_b.relative_to(images))
        )
        if a is None or b is None:
            continue
        v = pipe.compare(a, b)
        assert v.same == (float(norm.normalize(a, b)[0]) >= norm.threshold("1e-3"))
        assert v.score_norm and v.normalized_score == pytest.approx(float(norm.normalize(a, b)[0]), abs=1e-4)
        checked += 1
    assert checked >= 50


@pytest.mark.real
@pytest.mark.data
def test_cli_verify_score_norm(lfw_image) -> None:
    import json

    from typer.testing import CliRunner

    from faceprint.cli import app

    a, b, c = lfw_image("George_W_Bush", 1), lfw_image("George_W_Bush", 2), lfw_image("Serena_Williams", 1)
    r = CliRunner().invoke(app, ["verify", str(a), str(b), "--score-norm", "s-norm"])
    assert r.exit_code == 0, r.output
    assert "same person" in r.stdout and "normalised score" in r.stdout and "s-norm(top_k=" in r.stdout
    r = CliRunner().invoke(app, ["verify", str(a), str(c), "--score-norm", "fsn", "--json"])
    assert r.exit_code == 1, r.output
    d = json.loads(r.stdout)
    assert d["decision"] == "no_match" and d["score_norm"].startswith("fsn(") and d["normalized_score"] < d["threshold"]
    plain = json.loads(CliRunner().invoke(app, ["verify", str(a), str(c), "--json"]).stdout)
    assert "score_norm" not in plain  # default output keeps its keys
    r = CliRunner().invoke(app, ["verify", str(a), str(b), "--score-norm", "t-norm"])
    assert r.exit_code != 0 and "t-norm" in r.output and "s-norm" in r.output


def test_identify_normalises_the_top_candidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faceprint.gallery.sqlite import Gallery
    from faceprint.pipeline import UNKNOWN, FacePipeline
    from faceprint.types import Face
    from fakes import make_detection

    rng = np.random.default_rng(7)
    people = {n: _unit(rng.normal(size=(2, 128))).astype(np.float32) for n in ("ann", "bob", "cid")}
    probe = _unit(people["ann"][1] + rng.normal(scale=0.02, size=128)).astype(np.float32)
    stranger = _unit(rng.normal(size=128)).astype(np.float32)
    image = np.zeros((64, 64, 3), np.uint8)
    for method in ("s-norm", "fsn"):
        pipe = FacePipeline(score_norm=method)
        norm = get_score_normalizer(method, "sface")
        fp = pipe.embedder.fingerprint  # type: ignore[union-attr]
        with Gallery(tmp_path / f"{method}.db") as g:
            for name, t in people.items():
                g.enroll(name, t, fingerprint=fp)
            for emb, want in ((probe, "ann"), (stranger, UNKNOWN)):
                monkeypatch.setattr(pipe, "_faces", lambda *a, e=emb, f=fp, **k: [Face(make_detection(), e, f)])
                (res,) = pipe.identify(image, g, k=3)
                assert res.name == want and res.score_norm == norm.key and res.to_dict()["score_norm"] == norm.key
                assert res.threshold == norm.threshold("1e-3")
                for m in res.matches:
                    best = float(norm.normalize(np.repeat(emb[None], 2, 0), people[m.name]).max())
                    assert m.normalized_score == pytest.approx(best, rel=1e-5, abs=1e-5)
                    assert m.same == (best >= res.threshold) and m.to_dict()["normalized_score"] is not None
                scores = [m.normalized_score for m in res.matches]
                assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
            with pytest.raises(InvalidArgumentError, match="fpir"):
                pipe.identify(image, g, fpir=1e-2)
            raw = FacePipeline()
            monkeypatch.setattr(raw, "_faces", lambda *a, f=fp, **k: [Face(make_detection(), probe, f)])
            (plain,) = raw.identify(image, g, k=3)
            assert plain.name == "ann" and plain.score_norm is None and "score_norm" not in plain.to_dict()
            assert all(m.normalized_score is None and "normalized_score" not in m.to_dict() for m in plain.matches)
