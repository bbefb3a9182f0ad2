"""Evaluation reports: numbers against faceprint.evaluation, scikit-learn and a hand-computed case;
the HTML against the JSON; the LFW report on real data; rendering in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve

from faceprint.evaluation.report import MAX_CURVE_POINTS, ModelScores, build_report
from faceprint.evaluation.report_html import format_value, write_report
from faceprint.evaluation.verification import evaluate_verification, tar_at_fmr, threshold_at_fmr
from lfw_tiny import make_tiny_lfw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("summary", "roc", "det", "histograms", "thresholds")


def _synthetic(name: str, seed: int, n: int = 2000, separation: float = 0.5, n_nan: int = 3) -> ModelScores:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2 == 0
    scores = np.where(labels, rng.normal(0.1 + separation, 0.12, n), rng.normal(0.1, 0.12, n))
    scores[rng.choice(n, n_nan, replace=False)] = np.nan
    folds = (np.arange(n) // 2) % 10
    return ModelScores(name, scores, labels, folds, failures_to_acquire=n_nan)


@pytest.fixture(scope="module")
def two_models() -> list[ModelScores]:
    cmc = np.array([0.8, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 1.0])
    a = _synthetic("model-a", 0)
    b = _synthetic("model-b <&>", 1, separation=0.35)
    return [ModelScores(a.model, a.scores, a.labels, a.folds, a.failures_to_acquire, cmc=cmc), b]


@pytest.fixture(scope="module")
def written(two_models: list[ModelScores], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    report = build_report(two_models, title="synthetic <two models>")
    out = tmp_path_factory.mktemp("report")
    json_path, html_path = write_report(report, out)
    assert json_path == out / "report.json" and html_path == out / "report.html"
    return report, out


# -- HTML parsing ------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Collects element ids, img sources and tables (rows of (data-value or None, text) cells)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []
        self.tables: list[tuple[dict[str, str | None], list[list[tuple[str | None, str]]]]] = []
        self._cell: list[Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.images.append(str(a["src"]))
        elif tag == "table":
            self.tables.append((a, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = [a.get("data-value"), ""]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append((self._cell[0], self._cell[1]))
            self._cell = None


def _page(html_path: Path) -> _Page:
    page = _Page()
    page.feed(html_path.read_text(encoding="utf-8"))
    return page


def _values(row: list[tuple[str | None, str]]) -> list[Any]:
    """data-value cells of a row, decoded; also checks each cell's text is the formatted value."""
    out = []
    for raw, text in row:
        if raw is None:
            continue
        value = json.loads(raw)
        assert text == format_value(value)
        out.append(value)
    return out


# -- JSON and HTML -------------------------------------------------------------------------------
def test_json_file_is_the_report_dict(written: tuple[dict[str, Any], Path]) -> None:
    report, out = written
    assert json.loads((out / "report.json").read_text()) == report
    assert [m["model"] for m in report["models"]] == ["model-a", "model-b <&>"]


def test_html_is_self_contained_with_png_images(written: tuple[dict[str, Any], Path]) -> None:
    _, out = written
    text = (out / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    page = _page(out / "report.html")
    assert set(SECTIONS) | {"cmc"} <= set(page.ids)
    assert len(page.images) == 4  # ROC, DET, histograms, CMC
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    assert "model-b &lt;&amp;&gt;" in text and "model-b <&>" not in text


def test_no_cmc_section_without_identification(two_models: list[ModelScores], tmp_path: Path) -> None:
    report = build_report(two_models[1:], title="one model")
    assert report["has_cmc"] is False and report["models"][0]["cmc"] is None
    _, html_path = write_report(report, tmp_path)
    page = _page(html_path)
    assert set(SECTIONS) <= set(page.ids) and "cmc" not in page.ids
    assert len(page.images) == 3


def test_table_cells_carry_the_json_values(written: tuple[dict[str, Any], Path]) -> None:
    report, out = written
    models = report["models"]
    tables = {a.get("id") or a.get("data-model"): rows for a, rows in _page(out / "report.html").tables}

    summary = {row[0][1]: _values(row) for row in tables["summary-table"][1:]}
    keys = {
        "pairs": "n_pairs",
        "genuine pairs": "n_genuine",
        "impostor pairs": "n_impostor",
        "failures to acquire": "failures_to_acquire",
        "pairs with a failure to acquire": "fta_pairs",
        "FTA rate (pairs)": "fta_rate",
        "accuracy": "accuracy",
        "accuracy std (over folds)": "accuracy_std",
        "ROC AUC": "auc",
        "EER": "eer",
        "threshold @ FMR 1e-3": "operating_threshold",
    }
    for label, key in keys.items():
        assert summary[label] == [m[key] for m in models], label  # one column per model, in order
    for i, fmr in enumerate(report["fmr_keys"]):
        assert summary[f"TAR @ FMR {fmr}"] == [m["thresholds"][i]["tar"] for m in models]
    assert summary["failures to acquire"] == [3, 3]

    for m in models:
        rows = [_values(r) for r in tables[m["model"]][1:]]
        columns = ("fmr", "threshold", "fnmr", "tar", "fmr_measured", "resolved")
        expected = [[r[k] for k in columns] for r in m["thresholds"]]
        assert rows == expected

    cmc_rows = {row[0][1]: _values(row) for row in tables["cmc-table"][1:]}
    assert cmc_rows == {"1": [0.8], "5": [0.97]}


# -- numbers ---------------------------------------------------------------------------------------
def test_threshold_table_matches_evaluation(
    two_models: list[ModelScores], written: tuple[dict[str, Any], Path]
) -> None:
    report, _ = written
    assert report["fmrs"] == [1e-2, 1e-3, 1e-4]
    for m, entry in zip(two_models, report["models"]):
        for fmr, row in zip(report["fmrs"], entry["thresholds"]):
            t = threshold_at_fmr(m.scores, m.labels, fmr)
            tar = tar_at_fmr(m.scores, m.labels, fmr)
            assert row["fmr"] == fmr and row["threshold"] == t and row["tar"] == tar and row["fnmr"] == 1.0 - tar
            impostor = np.nan_to_num(m.scores[~m.labels], nan=-np.inf)
            assert row["fmr_measured"] == np.mean(impostor >= t) <= fmr or not row["resolved"]
        ref = evaluate_verification(m.scores, m.labels, m.folds, model=m.model)
        assert (entry["accuracy"], entry["accuracy_std"], entry["eer"]) == (ref.accuracy, ref.accuracy_std, ref.eer)
        assert entry["operating_threshold"] == threshold_at_fmr(m.scores, m.labels, 1e-3)
        assert entry["fta_pairs"] == 3 and entry["fta_rate"] == 3 / 2000
        h = entry["histogram"]
        assert len(h["edges"]) == len(h["genuine"]) + 1 == len(h["impostor"]) + 1
        finite = np.isfinite(m.scores)
        assert sum(h["genuine"]) == (finite & m.labels).sum() and sum(h["impostor"]) == (finite & ~m.labels).sum()


def test_roc_points_and_auc_match_sklearn() -> None:
    m = _synthetic("m", 3, n=300, n_nan=0)
    entry = build_report([m], title="t")["models"][0]
    fpr, tpr, _ = roc_curve(m.labels, m.scores)
    assert len(fpr) <= MAX_CURVE_POINTS
    assert entry["roc"] == {"fmr": fpr.tolist(), "tar": tpr.tolist()}
    assert entry["det"] == {"fmr": fpr.tolist(), "fnmr": (1.0 - tpr).tolist()}
    assert entry["auc"] == pytest.approx(auc(fpr, tpr), rel=1e-12, abs=1e-15)


def test_long_roc_curve_is_a_subset_of_sklearn_points() -> None:
    m = _synthetic("m", 4, n=40000, separation=0.2, n_nan=0)
    entry = build_report([m], title="t")["models"][0]
    fpr, tpr, _ = roc_curve(m.labels, m.scores)
    assert len(fpr) > MAX_CURVE_POINTS
    got = list(zip(entry["roc"]["fmr"], entry["roc"]["tar"]))
    assert 100 < len(got) <= MAX_CURVE_POINTS
    assert got[0] == (fpr[0], tpr[0]) and got[-1] == (fpr[-1], tpr[-1])
    assert set(got) <= set(zip(fpr.tolist(), tpr.tolist()))
    assert got == sorted(got)  # still in curve order
    assert min(f for f, _ in got if f > 0) == fpr[fpr > 0].min()  # the low-FMR end is kept for the DET plot
    assert entry["auc"] == pytest.approx(auc(fpr, tpr), rel=1e-12)


def test_hand_computed_tiny_case() -> None:
    # genuine 0.9 0.8 0.7 0.4, impostor 0.6 0.5 0.3 0.2
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.6, 0.5, 0.3, 0.2])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    report = build_report([ModelScores("tiny", scores, labels, folds, 0)], title="t", fmrs=(0.25, 0.5, 1e-3))
    entry = report["models"][0]
    rows = {r["fmr"]: r for r in entry["thresholds"]}
    # FMR 1/4: one impostor (0.6) may pass -> threshold just above 0.5; genuine 0.9 0.8 0.7 accepted
    assert rows[0.25]["threshold"] == np.nextafter(0.5, 1)
    assert (rows[0.25]["tar"], rows[0.25]["fnmr"], rows[0.25]["fmr_measured"]) == (0.75, 0.25, 0.25)
    # FMR 1/2: impostors 0.6 and 0.5 pass -> just above 0.3; every genuine accepted
    assert rows[0.5]["threshold"] == np.nextafter(0.3, 1)
    assert (rows[0.5]["tar"], rows[0.5]["fnmr"], rows[0.5]["fmr_measured"]) == (1.0, 0.0, 0.5)
    # FMR 1e-3 < 1/4: no impostor may pass -> just above 0.6; not resolved by 4 impostors
    assert rows[1e-3]["threshold"] == np.nextafter(0.6, 1)
    assert (rows[1e-3]["tar"], rows[1e-3]["fmr_measured"], rows[1e-3]["resolved"]) == (0.75, 0.0, False)
    assert rows[0.25]["resolved"] and rows[0.5]["resolved"]
    # AUC: 14 of the 16 genuine/impostor orderings are right; EER 1/4 (FMR = FNMR = 1/4 on (0.5, 0.6])
    assert entry["auc"] == 14 / 16
    assert entry["eer"] == 0.25
    assert entry["operating_threshold"] == np.nextafter(0.6, 1)
    assert (entry["n_genuine"], entry["n_impostor"], entry["fta_pairs"]) == (4, 4, 0)


def test_failure_to_acquire_counts_as_rejected() -> None:
    scores = np.array([0.9, np.nan, 0.7, 0.4, 0.6, 0.5, np.nan, 0.2])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    m = ModelScores("fta", scores, labels, np.array([0, 1, 0, 1, 0, 1, 0, 1]), failures_to_acquire=2)
    entry = build_report([m], title="t", fmrs=(0.25,))["models"][0]
    assert (entry["failures_to_acquire"], entry["fta_pairs"], entry["fta_rate"]) == (2, 2, 0.25)
    row = entry["thresholds"][0]
    assert row["threshold"] == np.nextafter(0.5, 1) and row["tar"] == 0.5  # genuine 0.9, 0.7; NaN rejected


def test_bad_input_is_rejected(two_models: list[ModelScores]) -> None:
    with pytest.raises(ValueError, match="at least one model"):
        build_report([], title="t")
    with pytest.raises(ValueError, match="unique"):
        build_report([two_models[1], two_models[1]], title="t")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        build_report(two_models[1:], title="t", fmrs=(0.0,))
    m = two_models[1]
    with pytest.raises(ValueError, match="one length"):
        build_report([ModelScores("x", m.scores, m.labels[:-1], m.folds, 0)], title="t")


# -- real data -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lfw_report(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The report of two embedders (SFace, FaceNet; FaceNet only when installed) on a tiny LFW slice."""
    from faceprint import weights
    from faceprint.embedding import get_embedder
    from faceprint.evaluation.lfw import lfw_scores
    from faceprint.pipeline import FacePipeline

    root = make_tiny_lfw(data_root, tmp_path_factory.mktemp("lfw") / "data", gender_lists=False)
    keys = [k for k in ("sface", "facenet") if weights.is_installed(k)]
    if "sface" not in keys:
        pytest.skip("model 'sface' not installed")
    models = []
    for key in keys:
        pipe = FacePipeline(detector="yunet", embedder=get_embedder(key))
        scores, labels, fold_ids = lfw_scores(pipe, root)
        models.append(ModelScores(key, scores, labels, fold_ids, failures_to_acquire=int(np.isnan(scores).sum())))
    report = build_report(models, title="LFW pairs.txt (tiny slice)")
    out = tmp_path_factory.mktemp("lfw-report")
    write_report(report, out)
    return report, out


@pytest.mark.real
@pytest.mark.data
def test_lfw_report_on_real_data(lfw_report: tuple[dict[str, Any], Path]) -> None:
    report, out = lfw_report
    assert json.loads((out / "report.json").read_text()) == report
    for entry in report["models"]:
        assert entry["n_pairs"] == 12 and entry["n_genuine"] == 6
        assert len(entry["fold_accuracies"]) == 2
        assert entry["accuracy"] >= 0.8 and entry["auc"] >= 0.9
        assert entry["fta_pairs"] <= 1
    assert set(SECTIONS) <= set(_page(out / "report.html").ids)


# -- headless Chromium -----------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _render_in_chromium(html_path: Path, screenshot: Path, sections: tuple[str, ...]) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html_path.resolve().as_uri())
            page.wait_for_load_state("load")
            for section in sections:
                assert page.locator(f"#{section}").is_visible(), section
            # every image decoded and laid out (a broken data: URI has naturalWidth 0)
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            assert widths and all(w > 0 for w in widths)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    # only the page itself and its inline images were loaded: nothing from the network
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    png = screenshot.read_bytes()
    assert png.startswith(PNG_MAGIC)
    from PIL import Image

    with Image.open(screenshot) as im:
        pixels = np.asarray(im.convert("L"))
    assert pixels.shape[0] > 900 and pixels.std() > 10  # a full page, not a blank one


@pytest.mark.browser
def test_report_renders_in_headless_chromium(written: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    _, out = written
    _render_in_chromium(out / "report.html", tmp_path / "report.png", (*SECTIONS, "cmc"))


@pytest.mark.browser
@pytest.mark.real
@pytest.mark.data
def test_lfw_report_with_two_embedders_renders(lfw_report: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    report, out = lfw_report
    if len(report["models"]) < 2:
        pytest.skip("FaceNet not installed: the report holds one embedder")
    _render_in_chromium(out / "report.html", tmp_path / "lfw.png", SECTIONS)
    assert re.search(r"<th>sface</th><th>facenet</th>", (out / "report.html").read_text())
