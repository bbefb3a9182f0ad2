"""The LFW protocol driver on real data: a 2-fold slice of view 2, a view-1 list scored at the
calibrated threshold, and `faceprint evaluate lfw` end to end on a tiny copy of the layout."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceprint.cli import app
from faceprint.datasets import lfw_pairs
from faceprint.embedding import get_embedder
from faceprint.errors import DatasetNotFoundError
from faceprint.evaluation.lfw import evaluate_lfw
from faceprint.pipeline import FacePipeline
from lfw_tiny import make_tiny_lfw

pytestmark = [pytest.mark.real, pytest.mark.data]


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline(detector="yunet", embedder=get_embedder("sface"))


def test_two_folds_of_view2(pipe: FacePipeline, data_root: Path) -> None:
    rep = evaluate_lfw(pipe, data_root, folds=2)
    assert rep.n_pairs == 1200
    assert len(rep.fold_accuracies) == 2
    # measured 99.4 % over all 10 folds; two folds of 600 pairs stay well above 98 %
    assert rep.accuracy >= 0.98
    assert rep.auc >= 0.995
    assert rep.failures_to_acquire <= 3


def test_single_fold_list_uses_calibrated_threshold(pipe: FacePipeline, data_root: Path, tmp_path: Path) -> None:
    # the first 50 genuine + 50 impostor pairs of DevTest, in the view-1 format
    src = (data_root / "lfw" / "pairsDevTest.txt").read_text().splitlines()
    n = int(src[0])
    lines = ["50"] + src[1:51] + src[1 + n : 1 + n + 50]
    root = tmp_path / "data"
    (root / "lfw").mkdir(parents=True)
    (root / "lfw" / "small.txt").write_text("\n".join(lines) + "\n")
    (root / "lfw" / "lfw-deepfunneled").symlink_to(data_root / "lfw" / "lfw-deepfunneled")
    rep = evaluate_lfw(pipe, root, pairs_file="small.txt")
    assert rep.n_pairs == 100
    assert rep.fold_accuracies == (rep.accuracy,)
    assert rep.accuracy >= 0.95


def test_folds_must_leave_a_training_fold(pipe: FacePipeline, data_root: Path) -> None:
    with pytest.raises(ValueError, match="folds must be >= 2"):
        evaluate_lfw(pipe, data_root, folds=1)


def test_missing_pairs_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="pairs.txt"):
        lfw_pairs(tmp_path)


@pytest.fixture
def tiny_lfw(data_root: Path, tmp_path: Path) -> Path:
    """A 2-fold view-2 layout with 3 genuine + 3 impostor pairs per fold, over real LFW images."""
    return make_tiny_lfw(data_root, tmp_path / "tiny")


def test_cli_report_two_models_side_by_side(tiny_lfw: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["evaluate", "lfw", "--data", str(tiny_lfw), "-m", "sface", "-m", "facenet", "--report", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    assert [m["model"] for m in data["models"]] == ["sface", "facenet"]
    report = json.loads((out / "report.json").read_text())
    assert [m["model"] for m in report["models"]] == ["sface", "facenet"]
    for cli_row, rep_row in zip(data["models"], report["models"]):
        assert rep_row["accuracy"] == pytest.approx(cli_row["accuracy"])
        assert rep_row["auc"] == pytest.approx(cli_row["auc"])
    html = (out / "report.html").read_text()
    assert 'id="roc"' in html and 'id="det"' in html and "https://" not in html
    # gender bias section per model, at each model's calibrated FMR 1e-3 threshold
    assert 'id="bias"' in html
    assert [b["model"] for b in report["bias"]] == ["sface", "facenet"]
    for b, key in zip(report["bias"], ["sface", "facenet"]):
        assert b["threshold"] == pytest.approx(get_embedder(key).thresholds["1e-3"])
        groups = {r["group"]: r for r in b["rates"]}
        assert sum(r["n_genuine"] + r["n_impostor"] for r in groups.values()) == 12
        assert {"male"} <= set(groups) <= {"male", "female", "mixed", "unknown"}
        assert [r["metric"] for r in b["ratios"]] == ["fnmr", "fmr"]
        assert all(r["excluded"] == ["mixed", "unknown"] for r in b["ratios"])


def test_cli_report_without_gender_lists_still_writes(tiny_lfw: Path, tmp_path: Path) -> None:
    for lists in ("male_names.txt", "female_names.txt"):
        (tiny_lfw / "lfw" / lists).unlink()
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", "lfw", "--data", str(tiny_lfw), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["bias"] == []


def test_cli_evaluate_lfw_json(tiny_lfw: Path) -> None:
    root = tiny_lfw
    result = CliRunner().invoke(app, ["evaluate", "lfw", "--data", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    assert report["n_pairs"] == 12
    assert len(report["fold_accuracies"]) == 2
    assert 0.0 <= report["accuracy"] <= 1.0
    assert {"auc", "eer", "tar_at_fmr_1e-2", "tar_at_fmr_1e-3", "failures_to_acquire"} <= set(report)


def test_cli_report_with_identification_has_cmc(tiny_lfw: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["evaluate", "lfw", "--data", str(tiny_lfw), "--report", str(out), "--identification", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    cmc = data["identification_1shot"]["cmc"]
    report = json.loads((out / "report.json").read_text())
    assert report["has_cmc"] is True
    assert report["models"][0]["cmc"] == pytest.approx(cmc)
    assert 'id="cmc"' in (out / "report.html").read_text()


def test_embedding_cache_embeds_shared_images_once(tiny_lfw: Path) -> None:
    """Pairs then identification on the same images: the second run embeds nothing new."""
    from faceprint.evaluation.lfw import EmbeddingCache, evaluate_lfw_identification, lfw_scores
    from fakes import FakeDetector, FakeEmbedder

    emb = FakeEmbedder()
    pipe = FacePipeline(detector=FakeDetector(), embedder=emb)
    cache = EmbeddingCache(pipe)
    ticks: list[int] = []
    lfw_scores(pipe, tiny_lfw, cache=cache, progress=ticks.append)
    n_pair_images, calls = len(cache), emb.calls
    assert n_pair_images > 0 and sum(ticks) == n_pair_images
    ticks.clear()
    _, failures = evaluate_lfw_identification(pipe, tiny_lfw, n_shots=[1], cache=cache, progress=ticks.append)
    assert failures == 0
    n_identity_images = len(list((tiny_lfw / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")))
    assert sum(ticks) == n_identity_images == len(cache)  # the bar completes, cached images included
    assert emb.calls - calls == n_identity_images - n_pair_images  # only images not seen before were embedded
    assert n_identity_images > n_pair_images
    fresh, _ = evaluate_lfw_identification(pipe, tiny_lfw, n_shots=[1])  # same numbers without the cache
    assert fresh[0].to_dict() == evaluate_lfw_identification(pipe, tiny_lfw, n_shots=[1], cache=cache)[0][0].to_dict()


def test_run_lfw_protocol_is_evaluate_lfw_plus_identification_and_gender(data_root: Path, tmp_path: Path) -> None:
    """The one LFW workflow: its verification report is evaluate_lfw's; identification reuses the pair
    embeddings; the gender section needs the gender lists and says why when they are missing."""
    from faceprint.evaluation.lfw import lfw_gender_bias, run_lfw_protocol
    from faceprint.evaluation.report import build_report
    from fakes import FakeDetector, FakeEmbedder

    root = make_tiny_lfw(data_root, tmp_path / "with")
    pipe = FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    stages: list[tuple[str, int]] = []
    ticks: list[int] = []

    def stage(what: str, total: int) -> Callable[[int], None]:
        stages.append((what, total))
        return ticks.append

    run = run_lfw_protocol(pipe, root, identification=True, gender_bias=True, stage=stage)
    assert run.model == "fake" and len(run.pairs) == run.scores.size == 12
    assert run.verification.to_dict() == evaluate_lfw(pipe, root).to_dict()
    n_pair_images = len({p for pair in run.pairs for p in (pair.path_a, pair.path_b)})
    n_images = len(list((root / "lfw" / "lfw-deepfunneled").glob("*/*.jpg")))
    assert stages == [("images", n_pair_images), ("identities", n_images)]
    assert sum(ticks) == n_pair_images + n_images
    assert run.identification is not None
    assert run.to_dict() == {**run.verification.to_dict(), "identification_1shot": run.identification.to_dict()}
    expected = lfw_gender_bias(
        run.scores, run.labels, lfw_pairs(root), root, 0.9, "fake",
        title="LFW pairs.txt by gender, calibrated FMR 1e-3 threshold",
    )
    assert run.gender_bias is not None and run.gender_bias.to_dict() == expected.to_dict()
    assert run.gender_bias_error is None
    report = build_report([run.model_scores()], title="t", bias=[run.gender_bias])
    assert report["models"][0]["cmc"] == pytest.approx(list(run.identification.cmc))

    bare = make_tiny_lfw(data_root, tmp_path / "without", gender_lists=False)
    run = run_lfw_protocol(pipe, bare, folds=2, gender_bias=True)
    assert run.gender_bias is None and run.identification is None
    assert run.gender_bias_error is not None and "female_names.txt" in run.gender_bias_error
    with pytest.raises(ValueError, match="folds must be >= 2"):
        run_lfw_protocol(pipe, bare, folds=1)
