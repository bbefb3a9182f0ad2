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
