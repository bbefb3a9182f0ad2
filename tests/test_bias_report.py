"""The bias section of evaluation reports: JSON == dict, table cells against the JSON, bar charts,
the ratio > 2 sentence and its highlight; `faceprint evaluate bias` on a UTKFace sample."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from faceprint.cli import app
from faceprint.datasets import Pair
from faceprint.evaluation.bias import group_error_rates, group_proportions
from faceprint.evaluation.lfw import lfw_gender_bias
from faceprint.evaluation.report import BiasSection, ModelScores, bias_section, build_report
from faceprint.evaluation.report_html import format_value, write_report
from test_report import PNG_MAGIC, SECTIONS, _page, _values


def _rates_with_ratio(ratio: int) -> BiasSection:
    """Impostor FMR of group 'a' = ratio x that of group 'b' (100 pairs each)."""
    scores = np.zeros(200)
    scores[:ratio] = 0.9  # group a: `ratio` false matches
    scores[100] = 0.9  # group b: one false match
    groups = ["a"] * 100 + ["b"] * 100
    rates = group_error_rates(scores, np.zeros(200, bool), groups, 0.5, n_boot=200)
    return bias_section(f"ratio {ratio}", "m", rates, ("fmr",), threshold=0.5, note="impostor pairs <&>")


def _model() -> ModelScores:
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 2 == 0
    scores = np.where(labels, rng.normal(0.6, 0.1, 400), rng.normal(0.1, 0.1, 400))
    return ModelScores("m", scores, labels, (np.arange(400) // 2) % 4, failures_to_acquire=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    det = group_proportions([True] * 3 + [False] * 97 + [True] * 2 + [False] * 98, ["x"] * 100 + ["y"] * 100)
    sections = [
        _rates_with_ratio(5),
        _rates_with_ratio(1),
        bias_section("detection", "m", det, ("rate",), label="detection failure rate"),
    ]
    report = build_report([_model()], title="bias", bias=sections)
    out = tmp_path_factory.mktemp("bias-report")
    write_report(report, out)
    return report, out


def test_json_is_the_dict_and_bias_is_listed(written: tuple[dict[str, Any], Path]) -> None:
    report, out = written
    assert json.loads((out / "report.json").read_text()) == report
    assert [s["title"] for s in report["bias"]] == ["ratio 5", "ratio 1", "detection"]
    assert "bias" not in build_report([_model()], title="no bias")


def test_bias_section_tables_match_json(written: tuple[dict[str, Any], Path]) -> None:
    report, out = written
    page = _page(out / "report.html")
    assert "bias" in page.ids and set(SECTIONS) <= set(page.ids)
    tables = [(a, rows) for a, rows in page.tables if "bias" in str(a.get("class"))]
    expected = [(i, t) for i, s in enumerate(report["bias"]) for t in s["tables"]]
    assert len(tables) == len(expected) == 3
    for (attrs, rows), (i, t) in zip(tables, expected):
        assert attrs["data-section"] == str(i) and attrs["data-metric"] == t["metric"]
        body = rows[1:]
        assert [r[0][1] for r in body] == [row["group"] for row in t["rows"]]
        for cells, row in zip(body, t["rows"]):
            assert _values(cells) == [row["n"], row["errors"], row["rate"], row["ci_low"], row["ci_high"]]
    first = report["bias"][0]["tables"][0]["rows"]
    assert [(r["group"], r["n"], r["errors"]) for r in first] == [("a", 100, 5), ("b", 100, 1)]
    assert first[0]["rate"] == 0.05 and first[0]["ci_low"] <= 0.05 <= first[0]["ci_high"]


def test_bar_charts_are_png(written: tuple[dict[str, Any], Path]) -> None:
    _, out = written
    page = _page(out / "report.html")
    assert len(page.images) == 3 + 3  # ROC, DET, histograms + one chart per bias section
    for src in page.images:
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    assert "https://" not in (out / "report.html").read_text()


def test_ratio_above_two_is_said_and_highlighted(written: tuple[dict[str, Any], Path]) -> None:
    report, out = written
    high, low, det = report["bias"]
    assert high["ratios"][0]["ratio"] == pytest.approx(5.0) and high["ratios"][0]["exceeds_limit"]
    # 5 and 1 false matches in 100 pairs each: the old page called this a material disparity (highlighted);
    # the counts cannot support that, so it is said plainly and not highlighted
    assert high["ratios"][0]["claim"] == "inconclusive" and high["ratios"][0]["supported"] is False
    assert high["highlight"] is False
    (sentence,) = high["sentences"]
    assert sentence.startswith("FMR of group a is 5.0 times that of group b, but the counts cannot support a claim")
    assert "5 and 1 false matches" in sentence
    assert low["ratios"][0]["ratio"] == pytest.approx(1.0) and low["sentences"] == [] and low["highlight"] is False
    assert det["ratios"][0]["ratio"] == pytest.approx(1.5) and det["sentences"] == []
    text = (out / "report.html").read_text()
    blocks = re.split(r'<div class="bias-block"', text)[1:]
    assert len(blocks) == 3
    assert 'class="bias-sentences"' in blocks[0] and high["sentences"][0] in blocks[0]
    assert "bias-alert" not in blocks[0] and "cannot support a claim" in blocks[0]
    assert "bias-alert" not in blocks[1] and "bias-alert" not in blocks[2]
    assert "No worst / best ratio exceeds 2" in blocks[1]
    assert f">{format_value(5.0)}<" in blocks[0]
    assert "impostor pairs &lt;&amp;&gt;" in blocks[0]


def test_undefined_ratios() -> None:
    none = group_error_rates(np.zeros(4), np.zeros(4, bool), list("aabb"), 0.5, n_boot=10)
    s = bias_section("t", "m", none, ("fmr",))
    assert s.ratios[0]["ratio"] is None and s.ratios[0]["status"] == "no errors" and s.sentences == ()
    one = group_error_rates(np.zeros(2), np.zeros(2, bool), list("aa"), 0.5, n_boot=10)
    assert bias_section("t", "m", one, ("fmr",)).ratios[0]["status"] == "too few groups"
    with pytest.raises(ValueError, match="unknown metric"):
        bias_section("t", "m", one, ("tar",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one model"):
        build_report([], title="t")


def test_bias_only_report(tmp_path: Path) -> None:
    report = build_report([], title="only bias", bias=[_rates_with_ratio(3)])
    write_report(report, tmp_path)
    page = _page(tmp_path / "report.html")
    assert "bias" in page.ids and "summary" not in page.ids and len(page.images) == 1


def test_lfw_gender_bias_groups(tmp_path: Path) -> None:
    (tmp_path / "lfw").mkdir()
    (tmp_path / "lfw" / "male_names.txt").write_text("A_0001.jpg\nA_0002.jpg\nB_0001.jpg\n")
    (tmp_path / "lfw" / "female_names.txt").write_text("C_0001.jpg\nC_0002.jpg\nD_0001.jpg\n")
    img = tmp_path / "lfw" / "lfw-deepfunneled"
    names = [("A", 1, "A", 2), ("C", 1, "C", 2), ("A", 1, "B", 1), ("C", 1, "D", 1), ("A", 1, "C", 1), ("A", 1, "E", 1)]
    pairs = [Pair(img / a / f"{a}_{i:04d}.jpg", img / b / f"{b}_{j:04d}.jpg", a == b, 0) for a, i, b, j in names]
    scores = np.array([0.9, 0.2, 0.1, 0.8, 0.1, 0.1])
    labels = np.array([p.same for p in pairs])
    s = lfw_gender_bias(scores, labels, pairs, tmp_path, 0.5, "m", n_boot=50)
    by = {r["group"]: r for r in s.rates}
    assert set(by) == {"male", "female", "mixed", "unknown"}
    assert by["female"]["fnmr"] == 1.0 and by["female"]["fmr"] == 1.0 and by["male"]["fnmr"] == 0.0
    assert by["mixed"]["n_genuine"] == 0 and by["mixed"]["n_impostor"] == 1
    for r in s.ratios:
        assert r["excluded"] == ["mixed", "unknown"]
        assert {r["worst"], r["best"]} <= {"male", "female"}
    fnmr_rows = s.to_dict()["tables"][0]["rows"]
    assert [r["group"] for r in fnmr_rows] == ["female", "male"]  # mixed/unknown have no genuine pair
    with pytest.raises(ValueError, match="6 pairs"):
        lfw_gender_bias(scores[:-1], labels, pairs, tmp_path, 0.5, "m")


@pytest.mark.real
@pytest.mark.data
def test_cli_evaluate_bias_sample(data_root: Path, tmp_path: Path) -> None:
    if not (data_root / "utkface" / "UTKFace").is_dir():
        pytest.skip("UTKFace not found")
    t0 = time.monotonic()
    out = tmp_path / "report"
    args = ["evaluate", "bias", "--data", str(data_root), "--max-images", "200", "--n-boot", "200", "--json",
            "--report", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert time.monotonic() - t0 < 30
    data = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", result.stdout))
    assert data["images"] == 200 and data["malformed_names"] == 0
    (m,) = data["models"]
    assert m["model"] == "sface" and m["detection_failures"] <= 20
    titles = [s["title"] for s in m["sections"]]
    assert titles == [
        "UTKFace detection failures by race x gender",
        "UTKFace impostor FMR by race x gender",
        "UTKFace detection failures by age band",
        "UTKFace impostor FMR by age band",
    ]
    cells = {r["group"] for r in m["sections"][1]["rates"]}
    assert {"White male", "Black female"} <= cells
    assert {r["group"] for r in m["sections"][3]["rates"]} <= {"0-17", "18-29", "30-44", "45-59", "60+"}
    for s in m["sections"]:
        assert len(s["ratios"]) == 1 and s["ratios"][0]["status"] in ("ok", "no errors", "not resolvable")
    for s in m["sections"][1::2]:  # impostor FMR sections: at the model's calibrated 1e-3 threshold
        assert s["threshold"] == pytest.approx(m["threshold"]) and all(r["n_genuine"] == 0 for r in s["rates"])
    assert "impostor pair" in m["sections"][1]["note"]
    report = json.loads((out / "report.json").read_text())
    assert report["models"] == [] and len(report["bias"]) == 4
    assert "bias" in _page(out / "report.html").ids


# -- claims, wording and threshold sources (synthetic UTKFace folder, fake models) ---------------


def test_supported_ratio_is_highlighted() -> None:
    scores = np.zeros(20_000)
    scores[:500] = 0.9  # group a: 500 false matches in 10,000 pairs
    scores[10_000:10_100] = 0.9  # group b: 100
    rates = group_error_rates(scores, np.zeros(20_000, bool), ["a"] * 10_000 + ["b"] * 10_000, 0.5, n_boot=50)
    d = bias_section("t", "m", rates, ("fmr",), threshold=0.5).to_dict()
    (r,) = d["ratios"]
    assert r["claim"] == "disparity" and r["supported"] and d["highlight"] is True
    assert (r["worst_errors"], r["best_errors"], r["min_errors"]) == (500, 100, 5)
    assert 2 < r["ci_low"] < 5 < r["ci_high"]
    assert d["sentences"][0].startswith("FMR of group a is 5.0 times that of group b (95 % interval")
    assert "a material disparity; 500 and 100 false matches" in d["sentences"][0]


def test_images_and_pairs_worded_in_the_report(tmp_path: Path) -> None:
    det = group_proportions([True] * 30 + [False] * 70 + [False] * 200, ["x"] * 100 + ["y"] * 200)
    e = np.random.default_rng(0).normal(size=(120, 4)) + 0.5
    from faceprint.evaluation.bias import utkface_impostor_fmr

    rates = utkface_impostor_fmr(e, ["p"] * 100 + ["q"] * 20, 0.9, max_pairs_per_group=1000, n_boot=20)
    sections = [
        bias_section("det", "m", det, ("rate",), label="detection failure rate", events="detection failures",
                     unit="images"),
        bias_section("fmr", "m", rates, ("fmr",), threshold=0.9),
    ]
    d_det, d_fmr = (s.to_dict() for s in sections)
    assert (d_det["tables"][0]["unit"], d_det["tables"][0]["events"]) == ("images", "detection failures")
    assert (d_fmr["tables"][0]["unit"], d_fmr["tables"][0]["events"]) == ("impostor pairs", "false matches")
    p, q = d_fmr["tables"][0]["rows"]
    assert (p["n"], p["n_total"], p["sampled"]) == (1000, 4950, True)
    assert (q["n"], q["n_total"], q["sampled"]) == (190, 190, False)
    assert d_det["ratios"][0]["unit"] == "images" and "200 images" in d_det["sentences"][0]
    write_report(build_report([], title="wording", bias=sections), tmp_path)
    text = (tmp_path / "report.html").read_text()
    det_block, fmr_block = re.split(r'<div class="bias-block"', text)[1:]
    assert "<th>images</th><th>detection failures</th>" in det_block and "pairs" not in det_block
    assert "<th>impostor pairs</th><th>of all impostor pairs</th><th>false matches</th>" in fmr_block
    assert ">of 4,950, sampled<" in fmr_block and ">all<" in fmr_block
    page = _page(tmp_path / "report.html")
    fmr_rows = [rows for a, rows in page.tables if a.get("data-metric") == "fmr"][0][1:]
    assert _values(fmr_rows[0])[:2] == [p["n"], p["errors"]]  # the words cell carries no value


def _utk_folder(tmp_path: Path, n: int = 40) -> Path:
    import io

    from PIL import Image as PILImage

    folder = tmp_path / "utkface" / "UTKFace"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        buf = io.BytesIO()
        PILImage.fromarray(np.full((100, 100, 3), rng.integers(0, 255, 3), np.uint8)).save(buf, format="JPEG")
        (folder / f"{20 + i % 50}_{i % 2}_{i % 5}_2017{i:04d}.jpg.chip.jpg").write_bytes(buf.getvalue())
    return tmp_path


def _fake_pipeline(*_: Any, **__: Any) -> Any:
    from faceprint.pipeline import FacePipeline
    from fakes import FakeDetector, FakeEmbedder

    return FacePipeline(detector=FakeDetector(), embedder=FakeEmbedder())


def test_evaluate_bias_threshold_from_each_source(tmp_path: Path) -> None:
    from faceprint.errors import FaceprintError, InvalidFileError
    from faceprint.evaluation.bias import cross_pair_matches, cross_pair_threshold
    from faceprint.evaluation.utkface import evaluate_bias

    root = _utk_folder(tmp_path)
    emb, _ = _fake_pipeline().embed_many(sorted((root / "utkface" / "UTKFace").glob("*.jpg")), select="central")

    def run(**kw: Any) -> dict[str, Any]:
        return evaluate_bias([_fake_pipeline()], root, n_boot=20, **kw).to_dict()

    lfw = run()
    (m,) = lfw["models"]
    assert (lfw["threshold_from"], lfw["fmr"], lfw["operating_point"]) == ("lfw", 1e-3, "1e-3")
    assert (m["threshold"], m["threshold_from"], m["fmr"]) == (0.9, "lfw", 1e-3)  # FakeEmbedder's 1e-3 threshold
    assert (m["cross_pair_matches"], m["cross_pairs"]) == cross_pair_matches(emb, 0.9)
    assert "Global threshold 0.9000 (calibrated FMR 1e-3 on LFW)" in m["sections"][1]["note"]
    assert run(fmr=1e-2)["models"][0]["threshold"] == 0.8

    utk = run(threshold_from="utkface", fmr=0.05)
    (m,) = utk["models"]
    t, n_pairs = cross_pair_threshold(emb, 0.05)
    assert (utk["threshold_from"], utk["operating_point"], m["threshold"], m["cross_pairs"]) == (
        "utkface", "5e-2", t, n_pairs
    )
    assert m["cross_pair_fmr"] <= 0.05 and m["cross_pair_matches"] == cross_pair_matches(emb, t)[0]
    assert f"FMR 5e-2 matched on all {n_pairs:,} cross pairs" in m["sections"][1]["note"]
    for s in m["sections"][1::2]:
        assert s["threshold"] == pytest.approx(t)

    whole = tmp_path / "calibration.json"
    whole.write_text(json.dumps({"models": {"fake": {"thresholds": {"1e-3": 0.55}, "fusion_weights": None}}}))
    entry = tmp_path / "entry.json"
    entry.write_text(json.dumps({"thresholds": {"1e-3": 0.65, "1e-2": 0.6}}))
    for path, value in ((whole, 0.55), (entry, 0.65)):
        res = run(threshold_from=path)
        assert res["threshold_from"] == str(path) and res["models"][0]["threshold"] == value
        assert f"FMR 1e-3 from {path}" in res["models"][0]["sections"][1]["note"]
    (tmp_path / "other.json").write_text(json.dumps({"models": {"sface": {"thresholds": {"1e-3": 0.3}}}}))
    with pytest.raises(InvalidFileError, match="no entry for model 'fake'"):
        run(threshold_from=tmp_path / "other.json")
    with pytest.raises(InvalidFileError, match="no threshold at FMR 1e-4"):
        run(threshold_from=entry, fmr=1e-4)
    with pytest.raises(FaceprintError, match="no calibrated threshold"):
        run(fmr=1e-4)  # the fake calibration has 1e-3 and 1e-2 only
    with pytest.raises(ValueError, match="threshold_from"):
        run(threshold_from="nowhere")
    with pytest.raises(ValueError, match="fmr"):
        run(fmr=0.0)


def test_cli_evaluate_bias_wording_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faceprint.cli.evaluate as cli_evaluate

    monkeypatch.setattr(cli_evaluate, "_pipeline", _fake_pipeline)
    root = _utk_folder(tmp_path)
    base = ["evaluate", "bias", "--data", str(root), "--n-boot", "20"]
    runner = CliRunner()
    plain = runner.invoke(app, [*base, "--threshold-from", "utkface", "--fmr", "0.05"])
    assert plain.exit_code == 0, plain.output
    text = re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", plain.stdout))
    assert "threshold at FMR 5e-2, matched on these UTKFace pairs" in text
    assert "95 % interval" in text and "claim" in text
    assert re.search(r"fake: threshold \d\.\d{4} at FMR 5e-2 \(matched on these UTKFace pairs\); [\d,]+ of the 780 "
                     r"cross pairs of all 40 embedded images match at it", text)
    as_json = runner.invoke(app, [*base, "--json", "--report", str(tmp_path / "r")])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(re.sub(r"\x1b\[[0-9;]*m", "", as_json.stdout))
    assert (data["threshold_from"], data["operating_point"]) == ("lfw", "1e-3")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert "threshold at FMR 1e-3 from the LFW calibration" in report["title"]
    det, fmr = report["bias"][:2]
    assert det["tables"][0]["unit"] == "images" and fmr["tables"][0]["unit"] == "impostor pairs"
    assert "bootstrap over the images" in det["note"] and "bootstrap over the pairs" in fmr["note"]
    for bad, message in ((["--fmr", "abc"], "--fmr must be"), (["--threshold-from", "nope"], "--threshold-from must")):
        res = runner.invoke(app, [*base, *bad])
        assert res.exit_code == 2 and message in res.output, res.output
