"""Open-set identification by FPIR: ``threshold_for_fpir`` on a fake tail, the shipped tails, and
``identify(..., fpir=)`` keeping strangers out at the stated rate on held-out LFW people."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from faceprint import FacePipeline, Gallery
from faceprint.errors import FaceprintError, InvalidArgumentError, UnsupportedOperatingPointError
from faceprint.pipeline import UNKNOWN
from faceprint.thresholds import (
    ImpostorTail,
    fmr_for_fpir,
    impostor_tail,
    is_tail_calibration_identity,
    threshold_for_fmr,
    threshold_for_fpir,
)


@pytest.fixture(scope="module")
def tail() -> ImpostorTail:
    """A tail from 10^6 Gaussian 'impostor scores' (sd 0.1): measured to ~1e-5, extrapolated to ~1e-7."""
    scores = np.random.default_rng(0).normal(0.0, 0.1, 1_000_000)
    return ImpostorTail.from_scores("fake", scores)


# -- the maths on a fake tail -------------------------------------------------------------------


def test_fmr_for_fpir_inverts_the_independence_formula() -> None:
    for fpir, n in [(0.01, 1), (0.01, 100), (0.05, 150), (0.2, 10**6)]:
        f = fmr_for_fpir(fpir, n)
        assert 1 - (1 - f) ** n == pytest.approx(fpir, rel=1e-9)
    assert fmr_for_fpir(0.01, 1) == 0.01
    assert fmr_for_fpir(1e-3, 10**4) == pytest.approx(1e-7, rel=1e-3)  # about fpir / N


def test_tail_quantiles_are_the_empirical_rates(tail: ImpostorTail) -> None:
    scores = np.random.default_rng(0).normal(0.0, 0.1, 1_000_000)
    for f in (1e-1, 1e-2, 1e-3, 1e-4):
        t = tail.threshold(f)
        assert (scores >= t).mean() <= f
        assert (scores >= t - 1e-3).mean() > f * 0.8  # not far above the quantile either
    assert tail.fmr_min_measured == pytest.approx(10**-5, rel=1e-9)  # 10 exceedances in 10^6
    assert not tail.is_extrapolated(1e-5) and tail.is_extrapolated(1e-6)
    # the Pareto extrapolation follows the Gaussian tail it was fitted to
    from scipy.stats import norm

    assert tail.threshold(1e-6) == pytest.approx(0.1 * norm.isf(1e-6), abs=0.01)


def test_threshold_for_fpir_at_one_template_is_the_fmr_threshold(tail: ImpostorTail) -> None:
    for f in (1e-1, 3e-2, 1e-3):
        assert threshold_for_fpir("fake", f, 1, tail=tail) == tail.threshold(f)


def test_threshold_for_fpir_rises_with_gallery_size_and_falls_with_fpir(tail: ImpostorTail) -> None:
    sizes = [1, 10, 100, 1_000, 10_000]
    by_size = [threshold_for_fpir("fake", 0.01, n, tail=tail) for n in sizes]
    assert all(a < b for a, b in zip(by_size, by_size[1:]))
    fpirs = [0.1, 0.05, 0.01, 1e-3]
    by_rate = [threshold_for_fpir("fake", f, 100, tail=tail) for f in fpirs]
    assert all(a < b for a, b in zip(by_rate, by_rate[1:]))
    # predicted FPIR at that threshold on the fake distribution: 1 - (1 - FMR)^N, FMR from the Gaussian
    from scipy.stats import norm

    t = threshold_for_fpir("fake", 0.01, 100, tail=tail)
    assert 1 - (1 - norm.sf(t / 0.1)) ** 100 == pytest.approx(0.01, rel=0.15)


@pytest.mark.parametrize("fpir", [0.0, 1.0, -0.1, 1.5, math.nan, True, "0.01"])
def test_fpir_outside_zero_one_is_refused(tail: ImpostorTail, fpir: object) -> None:
    with pytest.raises(UnsupportedOperatingPointError, match="fpir must be"):
        threshold_for_fpir("fake", fpir, 10, tail=tail)  # type: ignore[arg-type]


def test_refusals_are_faceprint_and_value_errors(tail: ImpostorTail) -> None:
    assert issubclass(UnsupportedOperatingPointError, FaceprintError)
    assert issubclass(UnsupportedOperatingPointError, ValueError)
    with pytest.raises(ValueError, match="n_templates"):
        threshold_for_fpir("fake", 0.01, 0, tail=tail)
    # 0.01 at 10^7 templates needs FMR 1e-9 per comparison: beyond measured (1e-5) and extrapolated (1e-7)
    with pytest.raises(UnsupportedOperatingPointError, match="beyond what its impostor tail supports"):
        threshold_for_fpir("fake", 0.01, 10**7, tail=tail)
    with pytest.raises(UnsupportedOperatingPointError, match="outside the impostor tail table"):
        threshold_for_fpir("fake", 0.5, 1, tail=tail)  # above the table's 1e-1
    with pytest.raises(UnsupportedOperatingPointError, match="no impostor tail for model 'no-such-model'"):
        threshold_for_fpir("no-such-model", 0.01, 10)


def test_tail_round_trips_through_its_dict(tail: ImpostorTail) -> None:
    again = ImpostorTail.from_dict("fake", tail.to_dict())
    for f in (1e-1, 1e-3, 1e-5, 1e-6, 2e-7):
        assert again.threshold(f) == pytest.approx(tail.threshold(f), abs=1e-5)
    assert tail.to_dict()["extrapolation"]["method"].startswith("generalized Pareto")


def test_a_tail_from_too_few_pairs_is_refused() -> None:
    with pytest.raises(UnsupportedOperatingPointError, match="fewer than two tail points"):
        ImpostorTail.from_scores("tiny", np.linspace(-0.2, 0.3, 50))


# -- the shipped tail --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["sface", "sface+flip"])
def test_shipped_tail_is_estimated_from_millions_of_pairs(key: str) -> None:
    t = impostor_tail(key)
    assert t.n_pairs > 1_000_000
    assert t.fmr_max == pytest.approx(0.1) and t.fmr_min_measured <= 1e-5
    assert t.extrapolation is not None and t.fmr_min < t.fmr_min_measured
    # on the order of the 1:1 DevTrain thresholds (1100 impostor pairs: only 1e-2 is really measured there)
    assert threshold_for_fmr(key, 1e-2) == pytest.approx(FacePipeline().threshold("1e-2"), abs=0.05) or key != "sface"
    assert threshold_for_fpir(key, 0.01, 100) < threshold_for_fpir(key, 0.01, 10_000)


def test_tail_split_is_fixed_and_about_half() -> None:
    names = [f"Person_{i}" for i in range(2000)]
    share = np.mean([is_tail_calibration_identity(n) for n in names])
    assert 0.45 < share < 0.55
    assert is_tail_calibration_identity("George_W_Bush") and not is_tail_calibration_identity("Tony_Blair")


# -- identify(..., fpir=) on real faces ---------------------------------------------------------


def test_fmr_and_fpir_together_are_refused(tmp_path: Path) -> None:
    from fakes import FakeDetector, FakeEmbedder

    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    with Gallery(tmp_path / "g.db") as g, pytest.raises(InvalidArgumentError, match="not both"):
        pipe.identify(np.zeros((64, 64, 3), np.uint8), g, fmr="1e-3", fpir=0.01)


N_ENROLLED, N_MATED, N_STRANGERS, FPIR = 150, 30, 300, 0.05


@pytest.mark.real
@pytest.mark.data
def test_identify_with_fpir_keeps_strangers_out_at_the_stated_rate(lfw_dir: Path, tmp_path: Path, yunet, sface) -> None:  # type: ignore[no-untyped-def]
    from scipy.stats import binom

    # held-out people only: the evaluation half of the tail's LFW split
    people = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir() and not is_tail_calibration_identity(p.name))
    counts = {p: len(list((lfw_dir / p).glob("*.jpg"))) for p in people}
    multi = [p for p in people if counts[p] >= 2]
    enrolled = multi[::2][:N_ENROLLED]
    strangers = [p for p in people if p not in set(enrolled)][::2][:N_STRANGERS]
    assert len(enrolled) == N_ENROLLED and len(strangers) == N_STRANGERS

    pipe = FacePipeline(detector=yunet, embedder=sface)
    with Gallery(tmp_path / "g.db") as g:
        for p in enrolled:
            pipe.enroll(p, lfw_dir / p / f"{p}_0001.jpg", g)
        assert g.n_templates == N_ENROLLED

        def search(path: Path) -> list:  # type: ignore[type-arg]
            return pipe.identify(path, g, k=1, select="central", fpir=FPIR)

        stranger_results = [r for p in strangers for r in search(lfw_dir / p / f"{p}_0001.jpg")]
        mated = [(p, r) for p in enrolled[:N_MATED] for r in search(lfw_dir / p / f"{p}_0002.jpg")]

    named = sum(r.known for r in stranger_results)
    n = len(stranger_results)
    assert n >= N_STRANGERS - 5  # a few photos may show no face the detector finds
    first = stranger_results[0]
    assert first.fpir == "0.05" and first.gallery_size == N_ENROLLED
    assert first.threshold == pytest.approx(threshold_for_fpir("sface", FPIR, N_ENROLLED))
    assert float(first.fmr) == pytest.approx(fmr_for_fpir(FPIR, N_ENROLLED), rel=1e-2)
    assert {"fpir", "gallery_size", "fmr", "threshold"} <= set(first.to_dict())
    # at most the stated rate, within a one-sided binomial bound (P(exceed) < 0.1 % if the rate is exactly 5 %)
    assert named <= binom.ppf(0.999, n, FPIR), f"{named}/{n} strangers named at fpir={FPIR}"
    # ... and the threshold still names the enrolled: most mated searches find the right person
    right = sum(r.name == p for p, r in mated)
    assert right >= 0.8 * len(mated), f"{right}/{len(mated)} mated searches named right"
    # the 1:1 threshold at FMR 1e-2 names more strangers (why the open-set threshold exists)
    assert first.threshold > pipe.threshold("1e-2")
    assert all(r.name in (UNKNOWN, *enrolled) for r in stranger_results)


# -- CLI -----------------------------------------------------------------------------------------


@pytest.mark.real
@pytest.mark.data
def test_cli_identify_fpir(tmp_path: Path, lfw_image) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from faceprint.cli import app

    runner = CliRunner()
    db = tmp_path / "g.db"
    enroll = runner.invoke(
        app, ["enroll", "George W Bush", str(lfw_image("George_W_Bush", 1)), str(lfw_image("George_W_Bush", 3)),
              "--gallery", str(db)]
    )
    assert enroll.exit_code == 0, enroll.output
    probe = str(lfw_image("George_W_Bush", 2))
    res = runner.invoke(app, ["identify", probe, "--gallery", str(db), "--fpir", "1e-2", "--json"])
    assert res.exit_code == 0, res.output
    face = json.loads(res.stdout)["faces"][0]
    assert face["name"] == "George W Bush"
    assert face["fpir"] == "0.01" and face["gallery_size"] == 2
    assert face["threshold"] == pytest.approx(threshold_for_fpir("sface", 0.01, 2), abs=1e-6)
    # without --fpir: the 1:1 threshold as before, the new keys null
    plain = json.loads(runner.invoke(app, ["identify", probe, "--gallery", str(db), "--json"]).stdout)["faces"][0]
    assert plain["fmr"] == "1e-3" and plain["fpir"] is None and plain["gallery_size"] is None
    assert plain["threshold"] == pytest.approx(FacePipeline().threshold("1e-3"), abs=1e-6)
    table = runner.invoke(app, ["identify", probe, "--gallery", str(db), "--fpir", "1e-2"]).stdout
    assert "FPIR 0.01 at 2 templates" in " ".join(table.split())  # Rich may wrap the title
    both = runner.invoke(app, ["identify", probe, "--gallery", str(db), "--fpir", "1e-2", "--fmr", "1e-3"])
    assert both.exit_code == 2 and "not both" in both.output
    bad = runner.invoke(app, ["identify", probe, "--gallery", str(db), "--fpir", "2"])
    assert bad.exit_code == 2 and "fpir must be" in bad.output
