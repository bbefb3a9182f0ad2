"""Bias metrics: checked against brute-force loops on small synthetic data."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from faceprint.datasets import (
    age_band,
    lfw_gender,
    pair_gender_groups,
    parse_utkface_name,
    read_gender_lists,
    utkface_groups,
)
from faceprint.evaluation.bias import (
    GroupRate,
    bias_sentences,
    group_error_rates,
    group_proportions,
    utkface_impostor_fmr,
    worst_best_ratio,
)


def _synthetic(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.4
    scores = np.where(labels, rng.normal(0.6, 0.15, n), rng.normal(0.1, 0.15, n))
    scores[rng.choice(n, 5, replace=False)] = np.nan
    groups = rng.choice(np.array(["a", "b", "c"]), n)
    return scores, labels, groups


def test_group_rates_match_brute_force() -> None:
    scores, labels, groups = _synthetic()
    thr = 0.35
    rates = {r.group: r for r in group_error_rates(scores, labels, groups, thr, n_boot=50)}
    assert sorted(rates) == ["a", "b", "c"]
    for g in rates:
        n_gen = n_imp = fnm = fm = 0
        for s, y, gg in zip(scores, labels, groups):
            if gg != g:
                continue
            match = (not math.isnan(s)) and s >= thr
            if y:
                n_gen += 1
                fnm += not match
            else:
                n_imp += 1
                fm += match
        r = rates[g]
        assert (r.n_genuine, r.n_impostor, r.false_non_matches, r.false_matches) == (n_gen, n_imp, fnm, fm)
        assert r.fnmr == pytest.approx(fnm / n_gen)
        assert r.fmr == pytest.approx(fm / n_imp)


def test_bootstrap_ci_contains_point_estimate_and_is_seeded() -> None:
    scores, labels, groups = _synthetic()
    rates = group_error_rates(scores, labels, groups, 0.35, n_boot=500, seed=3)
    for r in rates:
        assert r.fmr_ci[0] <= r.fmr <= r.fmr_ci[1]
        assert r.fnmr_ci[0] <= r.fnmr <= r.fnmr_ci[1]
        assert r.fnmr_ci[1] > r.fnmr_ci[0]  # some errors: a real interval
    again = group_error_rates(scores, labels, groups, 0.35, n_boot=500, seed=3)
    assert [r.fmr_ci for r in again] == [r.fmr_ci for r in rates]


def test_bootstrap_matches_resampling_pairs() -> None:
    # Binomial draws == resampling the pairs with replacement: compare spread with an explicit resampler.
    rng = np.random.default_rng(0)
    errors = rng.random(400) < 0.1
    scores = np.where(errors, 0.9, 0.1)
    (r,) = group_error_rates(scores, np.zeros(400, bool), ["g"] * 400, 0.5, n_boot=4000, seed=0)
    explicit = [errors[rng.integers(0, 400, 400)].mean() for _ in range(4000)]
    lo, hi = np.quantile(explicit, [0.025, 0.975])
    assert r.fmr_ci[0] == pytest.approx(lo, abs=0.01)
    assert r.fmr_ci[1] == pytest.approx(hi, abs=0.01)


def test_group_without_pairs_of_a_kind_is_nan() -> None:
    (r,) = group_error_rates([0.9, 0.1], [False, False], ["x", "x"], 0.5, n_boot=10)
    assert r.n_genuine == 0 and math.isnan(r.fnmr) and math.isnan(r.fnmr_ci[0])
    assert r.fmr == 0.5
    assert r.to_dict()["fnmr"] is None


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="one length"):
        group_error_rates([0.1, 0.2], [True], ["a", "a"], 0.5)
    with pytest.raises(ValueError, match="ci"):
        group_error_rates([0.1], [True], ["a"], 0.5, ci=1.5)


def _rate(group: str, fmr: float, n_imp: int, fnmr: float = 0.0, n_gen: int = 0) -> GroupRate:
    return GroupRate(group, 0.5, n_gen, n_imp, round(fnmr * n_gen), round(fmr * n_imp), fnmr, fmr,
                     (fnmr, fnmr), (fmr, fmr), 0.95)


def test_ratio_and_sentence_above_two() -> None:
    rates = [_rate("a", 0.01, 1000), _rate("b", 0.002, 1000), _rate("c", 0.004, 1000)]
    ratio, worst, best = worst_best_ratio(rates, "fmr")
    assert ratio == pytest.approx(5.0) and worst.group == "a" and best.group == "b"
    # 10 and 2 false matches: the old sentence called this a material disparity; the counts cannot support that
    assert bias_sentences(rates, ("fmr",)) == [
        "FMR of group a is 5.0 times that of group b, but the counts cannot support a claim: 10 and 2 false "
        "matches (a claim needs at least 5 in each group) and the 95 % interval of the ratio, 1.07-46.9, includes 2"
    ]


def test_no_sentence_below_two() -> None:
    rates = [_rate("a", 0.003, 1000), _rate("b", 0.002, 1000)]
    assert worst_best_ratio(rates)[0] == pytest.approx(1.5)
    assert bias_sentences(rates, ("fmr",)) == []


def test_ratio_with_zero_rates() -> None:
    rates = [_rate("a", 0.01, 1000), _rate("b", 0.0, 500)]
    ratio, worst, best = worst_best_ratio(rates)
    assert ratio == pytest.approx(0.01 / (1 / 500)) and best.group == "b"
    assert worst_best_ratio(rates, floor=False)[0] == math.inf
    (sentence,) = bias_sentences(rates, ("fmr",))
    assert "5.0 times" in sentence and "floored at 1/500" in sentence and "lower bound" in sentence
    unresolved = [_rate("a", 0.0018, 1671), _rate("b", 0.0, 176)]  # 1/176 > 0.0018: cannot tell
    assert math.isnan(worst_best_ratio(unresolved)[0])
    assert bias_sentences(unresolved) == []
    none = [_rate("a", 0.0, 100), _rate("b", 0.0, 100)]
    assert math.isnan(worst_best_ratio(none)[0])
    assert bias_sentences(none) == []


def test_ratio_excludes_and_needs_two_groups() -> None:
    rates = [_rate("male", 0.001, 1000), _rate("female", 0.002, 1000), _rate("mixed", 0.0, 1000)]
    assert worst_best_ratio(rates, exclude=("mixed",))[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="two groups"):
        worst_best_ratio(rates[:1])
    assert bias_sentences(rates[:1]) == []


def test_group_proportions_and_ratio() -> None:
    props = group_proportions([1, 0, 0, 0, 1, 1, 0, 0], list("aaaabbbb"), n_boot=100)
    assert [(p.group, p.count, p.n, p.rate) for p in props] == [("a", 1, 4, 0.25), ("b", 2, 4, 0.5)]
    assert worst_best_ratio(props, "rate")[0] == pytest.approx(2.0)
    assert bias_sentences(props, ("rate",), limit=1.5, what="detection failure rate")[0].startswith(
        "detection failure rate of group b is 2.0 times"
    )


def test_lfw_gender_lists(tmp_path: Path) -> None:
    lfw = tmp_path / "lfw"
    lfw.mkdir()
    (lfw / "male_names.txt").write_text("A_0001.jpg\nB_0001.jpg\nX_0001.jpg\n")
    (lfw / "female_names.txt").write_text("C_0001.jpg\nX_0001.jpg\n\n")
    lists = read_gender_lists(lfw / "male_names.txt", lfw / "female_names.txt")
    assert lists.in_both == ("X_0001.jpg",) and lists.n_male == 2 and lists.n_female == 1
    gender = lfw_gender(tmp_path)
    assert gender == {"A_0001.jpg": "male", "B_0001.jpg": "male", "C_0001.jpg": "female"}
    assert lfw_gender(lfw) == gender
    groups = pair_gender_groups(
        [Path("A/A_0001.jpg"), "A_0001.jpg", "C_0001.jpg", "X_0001.jpg"],
        ["B_0001.jpg", "C_0001.jpg", "C_0001.jpg", "A_0001.jpg"],
        gender,
    )
    assert groups == ["male", "mixed", "female", "unknown"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("25_1_2_20170116174525125.jpg.chip.jpg", (25, "female", "Asian")),
        ("1_0_0_20161219140623097.jpg.chip.jpg", (1, "male", "White")),
        ("100_0_4_20170112213303693.jpg.chip.jpg", (100, "male", "Others")),
        ("/x/y/61_1_3_2017.jpg", (61, "female", "Indian")),
    ],
)
def test_parse_utkface_name(name: str, expected: tuple[int, str, str]) -> None:
    label = parse_utkface_name(name)
    assert label is not None and (label.age, label.gender, label.race) == expected


@pytest.mark.parametrize(
    "name",
    [
        "39_1_20170116174525125.jpg",
        "x_1_2_2017.jpg",
        "25_2_2_2017.jpg",
        "25_1_5_2017.jpg",
        "25_1_2",
        "",
        "999_0_0_1.jpg",
    ],
)
def test_parse_utkface_name_malformed(name: str) -> None:
    assert parse_utkface_name(name) is None


def test_age_bands_and_groups() -> None:
    assert [age_band(a) for a in (0, 17, 18, 29, 30, 44, 45, 59, 60, 116)] == [
        "0-17", "0-17", "18-29", "18-29", "30-44", "30-44", "45-59", "45-59", "60+", "60+"
    ]
    cells, bands, bad = utkface_groups(["25_1_2_a.jpg", "bad.jpg", "70_0_1_b.jpg"])
    assert cells == ["Asian female", None, "Black male"] and bands == ["18-29", None, "60+"] and bad == 1


def test_utkface_impostor_fmr_brute_force() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=(40, 8))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    e[5] = np.nan  # a detection failure: left out
    groups: list[str | None] = [str(g) for g in rng.choice(["p", "q", "r"], 40)]
    groups[7] = None
    thr = 0.3
    rates = {r.group: r for r in utkface_impostor_fmr(e, groups, thr, n_boot=20)}
    for g, r in rates.items():
        idx = [i for i in range(40) if groups[i] == g and i != 5]
        pairs = list(itertools.combinations(idx, 2))
        fm = sum(1 for i, j in pairs if float(e[i] @ e[j]) >= thr)
        assert (r.n_impostor, r.false_matches, r.n_genuine) == (len(pairs), fm, 0)
        assert math.isnan(r.fnmr)


def test_utkface_impostor_fmr_sampling() -> None:
    rng = np.random.default_rng(3)
    e = rng.normal(size=(100, 4))
    full = utkface_impostor_fmr(e, ["g"] * 100, 0.5, n_boot=20)[0]
    sampled = utkface_impostor_fmr(e, ["g"] * 100, 0.5, max_pairs_per_group=3000, seed=1, n_boot=20)[0]
    assert full.n_impostor == 4950 and sampled.n_impostor == 3000
    assert sampled.fmr == pytest.approx(full.fmr, abs=0.03)


def test_evaluate_bias_matches_the_metrics_it_runs(tmp_path: Path) -> None:
    """evaluate_bias: sample, group, embed, then exactly group_proportions / utkface_impostor_fmr per group."""
    import io

    from PIL import Image as PILImage

    from faceprint.datasets import sample_images, utkface_images
    from faceprint.evaluation.utkface import evaluate_bias
    from faceprint.pipeline import FacePipeline
    from fakes import FakeDetector, FakeEmbedder

    folder = tmp_path / "utkface" / "UTKFace"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{age}_{g}_{r}_2017{i:04d}.jpg.chip.jpg" for i, (age, g, r) in enumerate(
        [(25, 0, 0), (31, 1, 0), (40, 0, 1), (50, 1, 1), (65, 0, 2), (12, 1, 2), (22, 0, 0), (33, 1, 1)]
    )] + ["bad_name.jpg"]
    for n in names:
        buf = io.BytesIO()
        colour = rng.integers(0, 255, 3)
        PILImage.fromarray(np.full((100, 100, 3), colour, np.uint8)).save(buf, format="JPEG")
        (folder / n).write_bytes(buf.getvalue())
    built: list[str] = []

    def pipelines():  # type: ignore[no-untyped-def]
        for _ in range(2):
            built.append("pipeline")
            yield FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())

    seen: list[tuple[str, int]] = []
    res = evaluate_bias(pipelines(), tmp_path, max_images=7, seed=1, n_boot=20, stage=lambda k, n: seen.append((k, n)))
    assert built == ["pipeline", "pipeline"] and seen == [("fake", 7), ("fake", 7)]
    paths = sample_images(utkface_images(tmp_path), 7, seed=1)
    cells, bands, malformed = utkface_groups([p.name for p in paths])
    d = res.to_dict()
    assert list(d) == [
        "images", "images_available", "malformed_names", "seed", "operating_point", "models", "fmr", "threshold_from"
    ]
    assert (d["images"], d["images_available"], d["malformed_names"], d["seed"]) == (7, 9, malformed, 1)
    assert (d["operating_point"], d["fmr"], d["threshold_from"]) == ("1e-3", 1e-3, "lfw")
    assert res.title == "UTKFace bias (7 of 9 images, threshold at FMR 1e-3 from the LFW calibration)"
    assert len(res.sections) == 8
    emb, errors = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder()).embed_many(paths, select="central")
    m = d["models"][0]
    assert m["threshold"] == 0.9 and m["detection_failures"] == sum(e is not None for e in errors)
    titles = [s["title"] for s in m["sections"]]
    assert titles == [
        "UTKFace detection failures by race x gender",
        "UTKFace impostor FMR by race x gender",
        "UTKFace detection failures by age band",
        "UTKFace impostor FMR by age band",
    ]
    assert "where fake finds no face" in m["sections"][0]["note"]
    fmr = utkface_impostor_fmr(emb, bands, 0.9, seed=1, n_boot=20)
    assert m["sections"][3]["rates"] == [r.to_dict() for r in fmr]
    labelled = [g for g in cells if g is not None]
    failed = np.array([e is not None for e in errors])[[g is not None for g in cells]]
    det = group_proportions(failed, labelled, n_boot=20, seed=1)
    assert m["sections"][0]["rates"] == [p.to_dict() for p in det]
    with pytest.raises(ValueError, match="max_images"):
        evaluate_bias([], tmp_path, max_images=1)


# -- claims: what the counts support -------------------------------------------------------------


def test_ratio_claim_rule_on_counts() -> None:
    from scipy.stats import beta

    from faceprint.evaluation.bias import MIN_ERRORS_FOR_CLAIM, ratio_claim

    assert MIN_ERRORS_FOR_CLAIM == 5
    supported = ratio_claim(50, 1000, 10, 1000)
    assert supported.ratio == pytest.approx(5.0) and supported.claim == "disparity" and supported.supported
    assert supported.ci_low > 2 and supported.ci_low < 5 < supported.ci_high and supported.reasons() == []
    # the exact interval: Clopper-Pearson on a's share of the 60 errors, mapped to the ratio (equal n here)
    lo, hi = beta.ppf(0.025, 50, 11), beta.ppf(0.975, 51, 10)
    assert supported.ci_low == pytest.approx(lo / (1 - lo)) and supported.ci_high == pytest.approx(hi / (1 - hi))
    # exactly MIN errors in the best group: a claim; one fewer: none, however far the interval is above 2
    assert ratio_claim(5, 10, 5, 10_000).claim == "disparity"
    few = ratio_claim(4, 10, 4, 10_000)
    assert few.ratio == pytest.approx(1000) and few.ci_low > 2 and few.claim == "inconclusive"
    assert few.reasons() == ["4 and 4 errors (a claim needs at least 5 in each group)"]
    # enough errors but the interval reaches below 2
    wide = ratio_claim(12, 1000, 5, 1000)
    assert wide.ratio == pytest.approx(2.4) and wide.ci_low < 2 and wide.claim == "inconclusive"
    assert wide.reasons("false matches") == [
        f"the 95 % interval of the ratio, {wide.ci_low:.3g}-{wide.ci_high:.3g}, includes 2"
    ]
    # enough errors and the interval below 2: the counts support "no disparity"
    assert ratio_claim(1100, 10_000, 1000, 10_000).claim == "no disparity"
    # no error in the best group: floored ratio, unbounded interval; none anywhere: nothing known
    zero = ratio_claim(10, 1000, 0, 500)
    assert zero.floored and zero.ratio == pytest.approx(5.0) and math.isinf(zero.ci_high) and not zero.supported
    none = ratio_claim(0, 100, 0, 100)
    assert math.isnan(none.ratio) and (none.ci_low, none.ci_high) == (0.0, math.inf) and none.claim == "inconclusive"
    assert ratio_claim(50, 1000, 10, 1000, min_errors=20).claim == "inconclusive"
    with pytest.raises(ValueError, match="errors must lie"):
        ratio_claim(11, 10, 1, 10)


def test_sentences_supported_unsupported_and_their_units() -> None:
    from faceprint.evaluation.bias import disparity_claim

    supported = [_rate("a", 0.05, 10_000), _rate("b", 0.01, 10_000)]
    (s,) = bias_sentences(supported, ("fmr",))
    claim = disparity_claim(supported)
    assert claim is not None and claim.supported and (claim.worst_errors, claim.best_errors) == (500, 100)
    assert s == (
        f"FMR of group a is 5.0 times that of group b (95 % interval {claim.ci_low:.3g}-{claim.ci_high:.3g}, "
        "above 2: a material disparity; 500 and 100 false matches)"
    )
    # FNMR counts false non-matches in genuine pairs
    fnmr = [_rate("a", 0.0, 10, fnmr=0.004, n_gen=1000), _rate("b", 0.0, 10, fnmr=0.0, n_gen=1000)]
    (s,) = bias_sentences(fnmr, ("fnmr",))
    assert "no error in 1000 genuine pairs" in s and "4 and 0 false non-matches" in s and "cannot support" in s
    # a proportion counts images, not pairs
    props = group_proportions([1] * 30 + [0] * 70 + [0] * 200, ["x"] * 100 + ["y"] * 200, n_boot=10)
    (s,) = bias_sentences(props, ("rate",), what="detection failure rate", events="detection failures")
    assert "group y had no error in 200 images" in s and "pairs" not in s
    assert "30 and 0 detection failures" in s


# -- streamed pairs ------------------------------------------------------------------------------


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=(n, d)) + 0.6  # positive mean: a spread of scores
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def _old_utkface_impostor_fmr(e: np.ndarray, groups: list[str], thr: float, max_pairs: int, seed: int) -> list:
    """The pre-streaming implementation (full matrix, every sampled pair at once): the reference."""
    rng = np.random.default_rng(seed)
    scores, names = [], []
    for name in sorted(set(groups)):
        sub = e[[i for i, g in enumerate(groups) if g == name]]
        n = len(sub)
        if n * (n - 1) // 2 <= max_pairs:
            iu, ju = np.triu_indices(n, k=1)
            s = (sub @ sub.T)[iu, ju]
        else:
            i = rng.integers(0, n, size=max_pairs)
            j = (i + rng.integers(1, n, size=max_pairs)) % n
            s = np.einsum("ij,ij->i", sub[i], sub[j])
        scores.append(s)
        names.append(np.full(s.size, name))
    s = np.concatenate(scores)
    return group_error_rates(s, np.zeros(s.size, bool), np.concatenate(names), thr, n_boot=50, seed=seed)


@pytest.mark.parametrize("block", [1, 7, 1000, 1 << 20])
def test_streamed_counts_equal_the_full_matrix(block: int) -> None:
    e = _unit(230, 16, 4)
    groups = [str(g) for g in np.random.default_rng(5).choice(["p", "q", "r"], 230)]
    for thr in (0.2, 0.5, 0.8):
        new = utkface_impostor_fmr(e, groups, thr, max_pairs_per_group=4000, seed=2, n_boot=50, block_elements=block)
        old = _old_utkface_impostor_fmr(e, groups, thr, 4000, 2)
        assert [r.to_dict() | {"n_impostor_total": 0, "sampled": 0} for r in new] == [
            r.to_dict() | {"n_impostor_total": 0, "sampled": 0} for r in old
        ]
    sizes = {g: groups.count(g) for g in set(groups)}
    for r in new:
        pairs = sizes[r.group] * (sizes[r.group] - 1) // 2
        assert r.sampled == (pairs > 4000)
        assert r.to_dict()["n_impostor_total"] == pairs and r.to_dict()["sampled"] == r.sampled
        assert r.n_impostor == min(pairs, 4000)
    (exact,) = utkface_impostor_fmr(e, ["all"] * 230, 0.5, max_pairs_per_group=None, n_boot=10, block_elements=block)
    assert exact.n_impostor == 230 * 229 // 2 and not exact.sampled


@pytest.mark.parametrize("fmr", [0.0, 1e-4, 1e-3, 0.01, 0.29, 0.5, 1.0])
def test_cross_pair_threshold_equals_threshold_at_fmr(fmr: float) -> None:
    from faceprint.evaluation import threshold_at_fmr
    from faceprint.evaluation.bias import cross_pair_matches, cross_pair_threshold

    # entries +-1/8 in 64 dimensions: unit rows whose dot products are exact in float64 whatever the
    # BLAS kernel (multiples of 1/32, so many ties), then random rows (equal up to rounding)
    signs = np.where(np.random.default_rng(6).random((150, 64)) < 0.6, 0.125, -0.125)
    for e, exact in ((signs, True), (_unit(150, 8, 6), False)):
        e = e.copy()
        e[10:14] = e[3]  # ties: identical rows
        e[20] = np.nan  # a detection failure: left out
        ok = np.delete(e, 20, axis=0)
        iu, ju = np.triu_indices(len(ok), k=1)
        scores = (ok @ ok.T)[iu, ju]
        expected = threshold_at_fmr(scores, np.zeros(scores.size, bool), fmr)
        for block in (5, 1 << 20):
            t, n = cross_pair_threshold(e, fmr, block_elements=block)
            assert n == scores.size
            if not exact:
                assert t == pytest.approx(expected, abs=1e-12)
                continue
            assert t == expected
            assert cross_pair_matches(e, t, block_elements=block) == (int((scores >= t).sum()), scores.size)
            assert int((scores >= t).sum()) <= fmr * scores.size
    with pytest.raises(ValueError, match="two usable"):
        cross_pair_threshold(signs[:1], 0.1)


def test_streaming_never_builds_an_n_by_n_matrix() -> None:
    import tracemalloc

    from faceprint.evaluation.bias import cross_pair_matches, cross_pair_threshold

    n = 3000
    e = _unit(n, 128, 7).astype(np.float32)
    groups = ["a"] * n
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        (r,) = utkface_impostor_fmr(e, groups, 0.5, max_pairs_per_group=None, n_boot=10)
        _, peak_counts = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        t, n_pairs = cross_pair_threshold(e, 1e-3)
        cross_pair_matches(e, t)
        _, peak_threshold = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.n_impostor == n_pairs == n * (n - 1) // 2
    full = n * n * 8  # one float64 n x n matrix: 72 MB
    assert peak_counts < full / 4 and peak_threshold < full / 4, (peak_counts, peak_threshold)
