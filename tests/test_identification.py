"""Tests of faceprint.identification: metrics against brute-force loops, the N-shot split, end to end."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from faceprint.classification import KNNFaceClassifier, SVMFaceClassifier
from faceprint.identification import (
    IdentificationReport,
    cmc,
    dir_at_fpir,
    evaluate_identification,
    gallery_scores,
    identities_with_at_least,
    nshot_split,
    rank_of_true,
)

# -- brute-force references -------------------------------------------------------------------


def brute_rank(scores: np.ndarray, true_index: np.ndarray) -> list[int]:
    ranks = []
    for row, t in zip(scores, true_index):
        ahead = 0
        for j, value in enumerate(row):
            if j != t and value >= row[t]:  # ties count against the probe
                ahead += 1
        ranks.append(1 + ahead)
    return ranks


def brute_cmc(scores: np.ndarray, true_index: np.ndarray, max_rank: int) -> list[float]:
    ranks = brute_rank(scores, true_index)
    return [sum(r <= k for r in ranks) / len(ranks) for k in range(1, max_rank + 1)]


def brute_dir(mated: np.ndarray, true_index: np.ndarray, nonmated: np.ndarray, fpir: float, rank: int):
    tops = [max(row) for row in nonmated]
    # candidate thresholds: accept everything, or just above one of the non-mated top scores
    candidates = sorted({-np.inf} | {float(np.nextafter(v, np.inf)) for v in tops})
    threshold = next(t for t in candidates if sum(v >= t for v in tops) / len(tops) <= fpir)
    ranks = brute_rank(mated, true_index)
    hits = sum(1 for row, t, r in zip(mated, true_index, ranks) if r <= rank and row[t] >= threshold)
    return hits / len(mated), threshold


def tied_scores(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Scores on a coarse grid, so that ties are frequent."""
    return rng.integers(0, 6, size=(n, m)) / 5.0


# -- ranks and CMC ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_rank_and_cmc_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = tied_scores(rng, 40, 7) if seed % 2 else rng.normal(size=(40, 7))
    true_index = rng.integers(0, 7, size=40)
    assert rank_of_true(scores, true_index).tolist() == brute_rank(scores, true_index)
    np.testing.assert_allclose(cmc(scores, true_index, max_rank=9), brute_cmc(scores, true_index, 9))


def test_rank_hand_computed_and_ties_pessimistic() -> None:
    scores = [[0.9, 0.5, 0.7], [0.2, 0.2, 0.1], [0.3, 0.1, 0.0]]
    assert rank_of_true(scores, [2, 0, 0]).tolist() == [2, 2, 1]
    assert cmc(scores, [2, 0, 0], max_rank=4).tolist() == [1 / 3, 1.0, 1.0, 1.0]


def test_rank_nan_counts_as_minus_inf() -> None:
    scores = [[np.nan, 0.1, 0.2], [0.5, np.nan, 0.1]]
    assert rank_of_true(scores, [0, 0]).tolist() == [3, 1]


def test_rank_tiebreak() -> None:
    votes = [[1.0, 0.0, 0.0, 0.0]]
    sims = [[0.9, 0.2, 0.6, 0.4]]
    assert rank_of_true(votes, [2]).tolist() == [4]  # tied with every zero vote: pessimistic
    assert rank_of_true(votes, [2], tiebreak=sims).tolist() == [2]
    assert rank_of_true(votes, [1], tiebreak=sims).tolist() == [4]


def test_rank_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="true index"):
        rank_of_true(np.zeros((2, 3)), [0])
    with pytest.raises(ValueError, match="true indices"):
        rank_of_true(np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match="n_probes, n_identities"):
        rank_of_true(np.zeros(3), [0])
    with pytest.raises(ValueError, match="max_rank"):
        cmc(np.zeros((2, 3)), [0, 1], max_rank=0)


# -- DIR at FPIR -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fpir", [0.0, 0.01, 0.1, 0.25, 0.5, 1.0])
def test_dir_matches_brute_force(seed: int, fpir: float) -> None:
    rng = np.random.default_rng(seed)
    n_ids = 6
    make = (lambda n: tied_scores(rng, n, n_ids)) if seed % 2 else (lambda n: rng.normal(size=(n, n_ids)))
    mated, nonmated = make(30), make(20)
    true_index = rng.integers(0, n_ids, size=30)
    mated[np.arange(30), true_index] += 0.5  # mostly correct at rank 1
    for rank in (1, 3):
        got = dir_at_fpir(mated, true_index, nonmated, fpir=fpir, rank=rank)
        want = brute_dir(mated, true_index, nonmated, fpir, rank)
        assert got == pytest.approx(want)


def test_dir_hand_computed() -> None:
    mated = [[0.9, 0.1], [0.2, 0.6], [0.3, 0.35], [0.8, 0.2]]
    nonmated = [[0.5, 0.2], [0.1, 0.3], [0.2, 0.1], [0.0, 0.1]]
    # non-mated tops 0.5, 0.3, 0.2, 0.1: FPIR 0.25 lets one through -> T just above 0.3
    d, t = dir_at_fpir(mated, [0, 1, 0, 1], nonmated, fpir=0.25)
    assert np.nextafter(0.3, 1) == t
    # probe 0 (0.9, rank 1) and 1 (0.6, rank 1) hit; 2 is at rank 2; 3 is at rank 2
    assert d == 0.5
    # FPIR 0: T just above 0.5; only probe 0 and 1 pass -> still 0.5; at rank 2 probe 2 (0.3) stays out
    assert dir_at_fpir(mated, [0, 1, 0, 1], nonmated, fpir=0.0) == (0.5, np.nextafter(0.5, 1))
    # FPIR 1: everything accepted -> DIR = rank-1 rate, rank 2 -> all
    assert dir_at_fpir(mated, [0, 1, 0, 1], nonmated, fpir=1.0) == (0.5, -np.inf)
    assert dir_at_fpir(mated, [0, 1, 0, 1], nonmated, fpir=1.0, rank=2)[0] == 1.0


def test_dir_ties_with_threshold_are_rejected() -> None:
    # mated score equal to the highest allowed non-mated score is rejected, like that non-mated probe
    d, t = dir_at_fpir([[0.5, 0.1]], [0], [[0.5, 0.0], [0.9, 0.0]], fpir=0.5)
    assert t == np.nextafter(0.5, 1) and d == 0.0


def test_dir_small_nonmated_count_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="faceprint.identification"):
        d, t = dir_at_fpir([[0.95, 0.1]], [0], [[0.9, 0.0], [0.2, 0.0]], fpir=0.01)
    assert t == np.nextafter(0.9, 1) and d == 1.0
    assert "cannot measure an FPIR of 0.01" in caplog.text


def test_dir_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same identities"):
        dir_at_fpir(np.zeros((2, 3)), [0, 1], np.zeros((2, 4)), 0.1)
    with pytest.raises(ValueError, match="fpir"):
        dir_at_fpir(np.zeros((2, 3)), [0, 1], np.zeros((2, 3)), 1.5)
    with pytest.raises(ValueError, match="non-mated"):
        dir_at_fpir(np.zeros((2, 3)), [0, 1], np.zeros((0, 3)), 0.1)


# -- N-shot split ----------------------------------------------------------------------------


def lfw_like_names(rng: np.random.Generator) -> np.ndarray:
    counts = np.concatenate([np.ones(40, int), rng.integers(2, 12, size=60)])
    return np.repeat(np.array([f"p{i:03d}" for i in range(counts.size)]), counts)[rng.permutation(counts.sum())]


@pytest.mark.parametrize("n_shot", [1, 2, 5])
def test_nshot_split_invariants(n_shot: int) -> None:
    names = lfw_like_names(np.random.default_rng(0))
    g, p, nm = nshot_split(names, n_shot, seed=3)
    assert np.intersect1d(g, p).size == np.intersect1d(g, nm).size == np.intersect1d(p, nm).size == 0
    assert np.array_equal(np.sort(np.concatenate([g, p, nm])), np.arange(names.size))
    enrolled, per_id = np.unique(names[g], return_counts=True)
    assert (per_id == n_shot).all()
    assert set(np.unique(names[p])) == set(enrolled)
    assert not set(names[nm]) & set(enrolled)  # non-mated people are never in the gallery
    unique, counts = np.unique(names, return_counts=True)
    assert set(enrolled) == set(unique[counts >= n_shot + 1])
    assert set(names[nm]) == set(unique[counts < n_shot + 1])
    # seeded: same seed, same split; another seed, another gallery
    for a, b in zip(nshot_split(names, n_shot, seed=3), (g, p, nm)):
        assert np.array_equal(a, b)
    assert not np.array_equal(nshot_split(names, n_shot, seed=4)[0], g)


def test_nshot_split_nested_and_restricted() -> None:
    names = lfw_like_names(np.random.default_rng(1))
    same = identities_with_at_least(names, 6)
    galleries = [nshot_split(names, n, seed=7, restrict_to=same)[0] for n in (1, 2, 5)]
    assert all(set(names[g]) == set(same) for g in galleries)
    assert set(galleries[0]) <= set(galleries[1]) <= set(galleries[2])
    nonmated = [nshot_split(names, n, seed=7, restrict_to=same)[2] for n in (1, 2, 5)]
    assert all(np.array_equal(nm, nonmated[0]) for nm in nonmated)
    # nesting also holds without restrict_to, for the people enrolled at both N
    g1, g5 = nshot_split(names, 1, seed=7)[0], nshot_split(names, 5, seed=7)[0]
    assert set(g1[np.isin(names[g1], names[g5])]) <= set(g5)


def test_nshot_split_min_probes() -> None:
    names = np.array(["a"] * 3 + ["b"] * 4 + ["c"])
    g, p, nm = nshot_split(names, 2, seed=0, min_probes=2)
    assert set(names[g]) == {"b"} and p.size == 2 and set(names[nm]) == {"a", "c"}


def test_nshot_split_errors() -> None:
    names = np.array(["a", "a", "b"])
    with pytest.raises(ValueError, match="no identity"):
        nshot_split(names, 2, seed=0)
    with pytest.raises(ValueError, match="fewer than"):
        nshot_split(names, 1, seed=0, restrict_to=["a", "b"])
    with pytest.raises(ValueError, match="no samples"):
        nshot_split(names, 1, seed=0, restrict_to=["zed"])
    with pytest.raises(ValueError, match="n_shot"):
        nshot_split(names, 0, seed=0)
    with pytest.raises(ValueError, match="1-D"):
        nshot_split(np.zeros((2, 2)), 1, seed=0)


# -- gallery scores --------------------------------------------------------------------------


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("aggregate", ["max", "mean"])
def test_gallery_scores_match_loops(aggregate: str) -> None:
    rng = np.random.default_rng(0)
    gallery = unit(rng.normal(size=(12, 5)))
    labels = rng.choice(["x", "y", "z", "w"], size=12)
    labels[:4] = ["x", "y", "z", "w"]
    probes = rng.normal(size=(6, 5))
    scores, identities = gallery_scores(gallery, labels, probes, aggregate=aggregate)  # type: ignore[arg-type]
    assert identities.tolist() == ["w", "x", "y", "z"]
    for i, probe in enumerate(unit(probes)):
        for j, name in enumerate(identities):
            templates = gallery[labels == name]
            want = (templates @ probe).max() if aggregate == "max" else unit(templates.sum(0)) @ probe
            assert scores[i, j] == pytest.approx(want)


def test_gallery_scores_nan_probe_and_errors() -> None:
    scores, _ = gallery_scores(np.eye(2), ["a", "b"], [[np.nan, 0.0], [1.0, 0.0]])
    assert np.isnan(scores[0]).all() and scores[1].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="finite"):
        gallery_scores([[np.nan, 0.0]], ["a"], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="aggregate"):
        gallery_scores(np.eye(2), ["a", "b"], np.eye(2), aggregate="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dimensions"):
        gallery_scores(np.eye(2), ["a", "b"], np.eye(3))


# -- end to end on synthetic clusters ----------------------------------------------------------


def clustered(seed: int = 0, noise: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """60 people with 1-9 samples each around random unit centres in 32 dimensions."""
    rng = np.random.default_rng(seed)
    counts = np.concatenate([np.ones(20, int), rng.integers(2, 10, size=40)])
    centres = unit(rng.normal(size=(counts.size, 32)))
    names = np.repeat(np.arange(counts.size), counts)
    emb = unit(centres[names] + noise * rng.normal(size=(names.size, 32)) / np.sqrt(32))
    return emb, np.array([f"id{n:02d}" for n in names])


def test_evaluate_identification_synthetic() -> None:
    emb, names = clustered()
    report = evaluate_identification(emb, names, n_shot=1, seed=0)
    assert isinstance(report, IdentificationReport)
    assert report.method == "template-max"
    assert report.n_identities == 40 and report.n_gallery == 40
    assert report.n_mated + report.n_gallery + report.n_nonmated == names.size
    assert report.n_nonmated_identities == 20
    assert report.rank1 >= 0.95 and report.rank5 >= report.rank1
    assert len(report.cmc) == 20 and report.cmc[0] == report.rank1 and report.cmc[-1] == 1.0
    assert set(report.dir_at_fpir) == {"0.01", "0.1"}
    assert report.dir_at_fpir["0.01"] <= report.dir_at_fpir["0.1"] <= report.rank1
    assert all(report.fpir_reached[k] <= float(k) for k in report.fpir_reached)
    d = report.to_dict()
    assert d["rank1"] == report.rank1 and d["dir_at_fpir"] == dict(report.dir_at_fpir)


def test_evaluate_identification_agrees_with_metrics() -> None:
    emb, names = clustered(seed=1, noise=1.2)  # noisy: ranks > 1 occur
    report = evaluate_identification(emb, names, n_shot=2, seed=5, aggregate="mean", max_rank=5)
    g, p, nm = nshot_split(names, 2, seed=5)
    mated, ids = gallery_scores(emb[g], names[g], emb[p], aggregate="mean")
    nonmated, _ = gallery_scores(emb[g], names[g], emb[nm], aggregate="mean")
    true_index = np.searchsorted(ids, names[p])
    assert report.rank1 < 1.0
    np.testing.assert_allclose(report.cmc, cmc(mated, true_index, max_rank=5))
    for fpir in (0.01, 0.1):
        assert (report.dir_at_fpir[f"{fpir:g}"], report.thresholds[f"{fpir:g}"]) == dir_at_fpir(
            mated, true_index, nonmated, fpir
        )


@pytest.mark.parametrize(
    "classifier", [KNNFaceClassifier(), KNNFaceClassifier(n_neighbors=3), SVMFaceClassifier(calibration=None)]
)
def test_evaluate_identification_with_classifier(classifier: KNNFaceClassifier | SVMFaceClassifier) -> None:
    emb, names = clustered(seed=2, noise=0.8)
    report = evaluate_identification(emb, names, n_shot=2, seed=0, classifier=classifier, fpirs=(0.1,))
    assert not hasattr(classifier, "classes_")  # a clone was fitted
    assert report.method == repr(classifier)
    assert report.rank1 >= 0.8
    # rank 1 is predict(); DIR is predict() after fit_unknown_threshold on the non-mated probes
    g, p, nm = nshot_split(names, 2, seed=0)
    fitted = type(classifier)(**classifier.get_params()).fit(emb[g], names[g])
    assert report.rank1 == pytest.approx(np.mean(fitted.predict(emb[p]) == names[p]))
    fitted.fit_unknown_threshold(emb[nm], fpir=0.1)
    assert report.thresholds["0.1"] == fitted.unknown_threshold_
    assert report.dir_at_fpir["0.1"] == pytest.approx(np.mean(fitted.predict(emb[p]) == names[p]))
    assert report.fpir_reached["0.1"] == pytest.approx(np.mean(fitted.predict(emb[nm]) != "unknown"))


def test_knn1_equals_nearest_template() -> None:
    emb, names = clustered(seed=3, noise=1.0)
    a = evaluate_identification(emb, names, n_shot=2, seed=1)
    b = evaluate_identification(emb, names, n_shot=2, seed=1, classifier=KNNFaceClassifier())
    assert a.cmc == b.cmc and a.dir_at_fpir == b.dir_at_fpir


def test_evaluate_identification_all_enrolled_has_no_dir(caplog: pytest.LogCaptureFixture) -> None:
    names = np.repeat(["a", "b", "c"], 3)
    emb = unit(np.repeat(np.eye(3), 3, axis=0) + 0.01)
    with caplog.at_level(logging.WARNING, logger="faceprint.identification"):
        report = evaluate_identification(emb, names, n_shot=1, seed=0, max_rank=3)
    assert report.rank1 == 1.0 and report.n_nonmated == 0 and dict(report.dir_at_fpir) == {}
    assert "no non-mated probes" in caplog.text


def test_evaluate_identification_rejects_nan() -> None:
    emb, names = clustered()
    emb[3] = np.nan
    with pytest.raises(ValueError, match="failures to acquire"):
        evaluate_identification(emb, names, n_shot=1, seed=0)
    with pytest.raises(ValueError, match="shape"):
        evaluate_identification(emb[:5], names, n_shot=1, seed=0)


# -- real data ---------------------------------------------------------------------------------


@pytest.mark.real
@pytest.mark.data
def test_lfw_subset_one_shot_rank1(data_root: Path) -> None:
    """30 LFW people with >= 4 images (4 each), YuNet + SFace: 1-shot closed-set rank-1 >= 0.9."""
    from faceprint import weights
    from faceprint.pipeline import FacePipeline

    for key in ("yunet", "sface"):
        if not weights.is_installed(key):
            pytest.skip(f"model {key!r} not installed")
    images = data_root / "lfw" / "lfw-deepfunneled"
    if not images.is_dir():
        pytest.skip(f"LFW images not found under {data_root}")
    people = [d for d in sorted(images.iterdir()) if len(list(d.glob("*.jpg"))) >= 4][:30]
    paths = [p for d in people for p in sorted(d.glob("*.jpg"))[:4]]
    names = np.array([p.parent.name for p in paths])
    start = time.perf_counter()
    emb, errors = FacePipeline().embed_many(paths)
    ok = np.array([e is None for e in errors])
    assert ok.mean() >= 0.95, [e for e in errors if e]
    report = evaluate_identification(emb[ok], names[ok], n_shot=1, seed=0, fpirs=())
    assert report.n_identities >= 28
    assert report.rank1 >= 0.9, report.to_dict()
    assert time.perf_counter() - start < 60
