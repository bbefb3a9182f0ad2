"""Rendering of an evaluation report: ``report.json`` and one self-contained ``report.html``.

:func:`write_report` writes the dict of :func:`~faceprint.evaluation.report.build_report`
unchanged to ``report.json`` and renders ``report.html`` with :func:`render_html`: plain HTML with
inline CSS and matplotlib figures embedded as base64 PNG, so the page opens offline (no CDN, no
external file). Each table cell carries its raw JSON value in a ``data-value`` attribute; the text
shown is that value through one formatter (:func:`format_value`).

Rendering only: every number comes from the report dict; nothing is computed here.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .verification import fmr_key

__all__ = ["format_value", "render_html", "write_report"]


def format_value(value: Any) -> str:
    """The text shown for a report value (one rounding everywhere: 4 significant digits)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.4g}"


def _cell(value: Any, tag: str = "td") -> str:
    raw = json.dumps(value, allow_nan=False)
    return f'<{tag} data-value="{html.escape(raw)}">{html.escape(format_value(value))}</{tag}>'


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{html.escape(alt)}">'


def _figures(report: dict[str, Any]) -> dict[str, str]:
    # Figures drawn on an explicit Agg canvas (see _png): no pyplot, no global backend switch.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    models = report["models"]
    out: dict[str, str] = {}

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for m in models:
        ax.plot(m["roc"]["fmr"], m["roc"]["tar"], label=f"{m['model']} (AUC {format_value(m['auc'])})")
    ax.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("true accept rate (TAR)")
    ax.set_title("ROC")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out["roc"] = _png(fig)

    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    low_x, low_y = min(report["fmrs"]), 1e-3
    for m in models:
        x = np.asarray(m["det"]["fmr"], dtype=np.float64)
        y = np.asarray(m["det"]["fnmr"], dtype=np.float64)
        ok = (x > 0) & (y > 0)  # zeros have no place on log axes
        ax.plot(x[ok], y[ok], label=m["model"])
        if ok.any():
            low_x, low_y = min(low_x, float(x[ok].min())), min(low_y, float(y[ok].min()))
    for fmr in report["fmrs"]:
        ax.axvline(fmr, color="0.7", linestyle=":", linewidth=1)
    # explicit limits: a perfectly separated model has no point with both rates > 0
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low_x / 2, 1.0)
    ax.set_ylim(low_y / 2, 1.0)
    ax.set_xlabel("false match rate (FMR, log)")
    ax.set_ylabel("false non-match rate (FNMR, log)")
    ax.set_title("DET")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    out["det"] = _png(fig)

    n = len(models)
    fig = Figure(figsize=(5 * n, 3.8))
    for i, m in enumerate(models):
        ax = fig.add_subplot(1, n, i + 1)
        h = m["histogram"]
        ax.stairs(h["impostor"], h["edges"], fill=True, alpha=0.5, label="impostor", color="tab:red")
        ax.stairs(h["genuine"], h["edges"], fill=True, alpha=0.5, label="genuine", color="tab:green")
        if m["operating_threshold"] is not None:
            key = fmr_key(report["operating_fmr"])
            ax.axvline(m["operating_threshold"], color="k", linestyle="--", label=f"threshold @ FMR {key}")
        ax.set_title(m["model"])
        ax.set_xlabel("score")
        ax.set_ylabel("pairs")
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    out["histograms"] = _png(fig)

    if report["has_cmc"]:
        fig = Figure(figsize=(6, 4.5))
        ax = fig.add_subplot()
        for m in models:
            if m["cmc"] is not None:
                ranks = np.arange(1, len(m["cmc"]) + 1)
                values = np.array([np.nan if v is None else v for v in m["cmc"]], dtype=np.float64)
                ax.plot(ranks, values, marker="o", markersize=3, label=m["model"])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate")
        ax.set_title("CMC")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        out["cmc"] = _png(fig)
    return out


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 1.5em 1em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td.label { text-align: left; }
thead th { background: #f2f2f2; }
.row { display: flex; flex-wrap: wrap; align-items: flex-start; }
img { max-width: 100%; }
.note { color: #666; font-size: .9em; }
.bias-alert { background: #fff3cd; border: 1px solid #e0a800; border-left: 6px solid #e0a800;
  padding: .5em 1em; margin: .5em 0 1em; }
.bias-alert p { margin: .3em 0; font-weight: 600; }
"""


def _summary_table(report: dict[str, Any]) -> str:
    models = report["models"]
    head = '<th>metric</th>' + "".join(f"<th>{html.escape(m['model'])}</th>" for m in models)
    rows: list[tuple[str, list[Any]]] = [
        ("pairs", [m["n_pairs"] for m in models]),
        ("genuine pairs", [m["n_genuine"] for m in models]),
        ("impostor pairs", [m["n_impostor"] for m in models]),
        ("failures to acquire", [m["failures_to_acquire"] for m in models]),
        ("pairs with a failure to acquire", [m["fta_pairs"] for m in models]),
        ("FTA rate (pairs)", [m["fta_rate"] for m in models]),
        ("accuracy", [m["accuracy"] for m in models]),
        ("accuracy std (over folds)", [m["accuracy_std"] for m in models]),
        ("ROC AUC", [m["auc"] for m in models]),
        ("EER", [m["eer"] for m in models]),
    ]
    for i, key in enumerate(report["fmr_keys"]):
        rows.append((f"TAR @ FMR {key}", [m["thresholds"][i]["tar"] for m in models]))
    rows.append(
        (f"threshold @ FMR {fmr_key(report['operating_fmr'])}", [m["operating_threshold"] for m in models])
    )
    body = "".join(
        f'<tr data-key="{html.escape(label)}"><td class="label">{html.escape(label)}</td>'
        + "".join(_cell(v) for v in values)
        + "</tr>"
        for label, values in rows
    )
    return f'<table id="summary-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _threshold_tables(report: dict[str, Any]) -> str:
    parts = []
    for m in report["models"]:
        body = "".join(
            "<tr>"
            + _cell(r["fmr"])
            + _cell(r["threshold"])
            + _cell(r["fnmr"])
            + _cell(r["tar"])
            + _cell(r["fmr_measured"])
            + _cell(r["resolved"])
            + "</tr>"
            for r in m["thresholds"]
        )
        parts.append(
            f'<div><h3>{html.escape(m["model"])}</h3>'
            f'<table class="thresholds" data-model="{html.escape(m["model"])}"><thead><tr>'
            "<th>FMR</th><th>threshold</th><th>FNMR</th><th>TAR</th><th>FMR measured</th><th>resolved</th>"
            f"</tr></thead><tbody>{body}</tbody></table></div>"
        )
    return '<div class="row">' + "".join(parts) + "</div>"


def _cmc_table(report: dict[str, Any]) -> str:
    models = [m for m in report["models"] if m["cmc"] is not None]
    max_len = max(len(m["cmc"]) for m in models)
    ranks = [k for k in (1, 5, 10, 20) if k <= max_len]
    head = "<th>rank</th>" + "".join(f"<th>{html.escape(m['model'])}</th>" for m in models)
    body = "".join(
        f'<tr><td class="label">{k}</td>'
        + "".join(_cell(m["cmc"][k - 1] if k <= len(m["cmc"]) else None) for m in models)
        + "</tr>"
        for k in ranks
    )
    return f'<table id="cmc-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _bias_figure(section: dict[str, Any]) -> str:
    """Horizontal bars of each metric's rate per group, with the bootstrap interval as error bars."""
    from matplotlib.figure import Figure

    tables = section["tables"]
    n_rows = max([len(t["rows"]) for t in tables] + [1])
    fig = Figure(figsize=(5 * len(tables), 1.2 + 0.4 * n_rows))
    for i, t in enumerate(tables):
        ax = fig.add_subplot(1, len(tables), i + 1)
        rows = [r for r in t["rows"] if r["rate"] is not None]
        y = np.arange(len(rows))
        rate = np.array([r["rate"] for r in rows], dtype=np.float64)
        low = np.array([r["ci_low"] if r["ci_low"] is not None else r["rate"] for r in rows], dtype=np.float64)
        high = np.array([r["ci_high"] if r["ci_high"] is not None else r["rate"] for r in rows], dtype=np.float64)
        xerr = np.vstack((np.clip(rate - low, 0, None), np.clip(high - rate, 0, None))) if rows else None
        ax.barh(y, rate, xerr=xerr, color="tab:blue", alpha=0.7, capsize=3, ecolor="k")
        ax.set_yticks(y, [r["group"] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel(f"{t['label']} (bars: {int(round(100 * _ci_level(section)))} % interval)")
        ax.set_title(f"{t['label']} by group")
        ax.grid(True, axis="x", alpha=0.3)
        if not rows or float(np.nanmax(high, initial=0.0)) == 0.0:
            ax.set_xlim(0, 1e-3)  # all zero: keep a visible axis
    fig.tight_layout()
    return _png(fig)


def _ci_level(section: dict[str, Any]) -> float:
    for r in section["rates"]:
        if "ci" in r:
            return float(r["ci"])
    return 0.95


def _claim_text(r: dict[str, Any]) -> str:
    """What the counts support, from the ratio dict (``claim``, interval, error counts)."""
    if r.get("claim") is None:
        return ""
    level = format_value(100 * float(r.get("ci", 0.95)))
    interval = f"{level} % interval {format_value(r['ci_low'])}-{format_value(r['ci_high'])}"
    counts = f"{r['worst_errors']} and {r['best_errors']} {r.get('events', 'errors')}"
    if r["claim"] == "disparity":
        return f"; {interval}, {counts}: the counts support a material disparity"
    if r["claim"] == "no disparity":
        return f"; {interval}, {counts}: the counts support no material disparity"
    return (
        f"; {interval}, {counts}: the counts cannot support a claim (that needs at least {r['min_errors']} "
        "in each group and an interval that excludes 2)"
    )


def _ratio_text(r: dict[str, Any]) -> str:
    name = html.escape(r["label"])
    if r["status"] == "too few groups":
        return f"worst / best {name}: undefined (fewer than two groups with data)"
    worst, best = html.escape(str(r["worst"])), html.escape(str(r["best"]))
    unit = html.escape(str(r.get("unit", "pairs")))
    if r["status"] == "no errors":
        return f"worst / best {name}: undefined (no error in any group)"
    if r["status"] == "not resolvable":
        return f"worst / best {name}: not resolvable ({best} had no error in too few {unit} to tell)"
    value = f'<span class="ratio" data-value="{html.escape(json.dumps(r["ratio"]))}">{format_value(r["ratio"])}</span>'
    floor = f" (no error in {best}: its rate floored at 1 / n, a lower bound)" if r["floored"] else ""
    return f"worst / best {name}: {value} ({worst} / {best}){floor}{html.escape(_claim_text(r))}"


def _total_cell(row: dict[str, Any]) -> str:
    """``of N, sampled`` for a row whose n is a sample of its pairs (no data-value: words, not a value)."""
    text = f"of {row['n_total']:,}, sampled" if row.get("sampled") else "all"
    return f'<td class="sampled">{html.escape(text)}</td>'


def _bias_section_html(index: int, section: dict[str, Any]) -> str:
    threshold = "" if section["threshold"] is None else f" at threshold {format_value(section['threshold'])}"
    parts = [
        f'<div class="bias-block" id="bias-{index}"><h3>{html.escape(section["title"])} '
        f"({html.escape(section['model'])}){threshold}</h3>"
    ]
    if section["note"]:
        parts.append(f'<p class="note">{html.escape(section["note"])}</p>')
    tables = []
    for t in section["tables"]:
        sampled = any(r.get("sampled") for r in t["rows"])
        body = "".join(
            f'<tr data-group="{html.escape(r["group"])}"><td class="label">{html.escape(r["group"])}</td>'
            + _cell(r["n"])
            + (_total_cell(r) if sampled else "")
            + _cell(r["errors"])
            + _cell(r["rate"])
            + _cell(r["ci_low"])
            + _cell(r["ci_high"])
            + "</tr>"
            for r in t["rows"]
        )
        label = html.escape(t["label"])
        unit = html.escape(t.get("unit", "n"))
        events = html.escape(t.get("events", "errors"))
        total_head = f"<th>of all {unit}</th>" if sampled else ""
        tables.append(
            f'<div><table class="bias" data-section="{index}" data-metric="{html.escape(t["metric"])}"><thead><tr>'
            f"<th>group</th><th>{unit}</th>{total_head}<th>{events}</th><th>{label}</th><th>CI low</th>"
            f"<th>CI high</th></tr></thead><tbody>{body}</tbody></table></div>"
        )
    parts.append('<div class="row">' + "".join(tables) + "</div>")
    parts.append(_img(_bias_figure(section), f"{section['title']}: rates per group with intervals"))
    parts.append("<ul class=\"ratios\">" + "".join(f"<li>{_ratio_text(r)}</li>" for r in section["ratios"]) + "</ul>")
    if section["sentences"]:
        # the highlighted box only for a claim the counts support; the others are said plainly
        cls = "bias-alert" if section["highlight"] else "bias-sentences"
        parts.append(
            f'<div class="{cls}">' + "".join(f"<p>{html.escape(x)}</p>" for x in section["sentences"]) + "</div>"
        )
    else:
        parts.append(f'<p class="note">No worst / best ratio exceeds {format_value(section["limit"])}.</p>')
    parts.append("</div>")
    return "".join(parts)


def _bias_html(report: dict[str, Any]) -> str:
    blocks = "".join(_bias_section_html(i, s) for i, s in enumerate(report["bias"]))
    return (
        '<section id="bias"><h2>Bias</h2>'
        '<p class="note">Error rates per demographic group at one global operating threshold. '
        "A worst / best ratio above 2 is called a material disparity (highlighted) only where the counts "
        "support it: enough errors in both groups and an exact interval of the ratio above 2; elsewhere the "
        "page says that the counts cannot support a claim.</p>"
        f"{blocks}</section>"
    )


def render_html(report: dict[str, Any]) -> str:
    """The self-contained HTML page of a :func:`build_report` dict (see :func:`write_report`)."""
    title = html.escape(report["title"])
    sections: list[str] = []
    if report["models"]:
        sections += _model_sections(report)
    if "bias" in report:
        sections.append(_bias_html(report))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1>" + "\n".join(sections) + "</body></html>\n"
    )


def _model_sections(report: dict[str, Any]) -> list[str]:
    figs = _figures(report)
    names = ", ".join(html.escape(m["model"]) for m in report["models"])
    sections = [
        '<section id="summary"><h2>Summary</h2>'
        f'<p class="note">Models: {names}. Accuracy: k-fold protocol (threshold chosen on the other folds). '
        "Failures to acquire count as non-matches everywhere.</p>"
        f"{_summary_table(report)}</section>",
        f'<section id="roc"><h2>ROC</h2>{_img(figs["roc"], "ROC curves")}</section>',
        f'<section id="det"><h2>DET</h2>{_img(figs["det"], "DET curves, log axes")}</section>',
        '<section id="histograms"><h2>Score histograms</h2>'
        f'<p class="note">Dashed line: threshold at FMR {fmr_key(report["operating_fmr"])}.</p>'
        f'{_img(figs["histograms"], "genuine and impostor score histograms")}</section>',
        '<section id="thresholds"><h2>Thresholds</h2>'
        '<p class="note">Match when score &ge; threshold. "resolved" is no when the FMR is below '
        "1 / impostor pairs: the threshold then only lies above every impostor seen.</p>"
        f"{_threshold_tables(report)}</section>",
    ]
    if report["has_cmc"]:
        sections.append(
            f'<section id="cmc"><h2>CMC</h2>{_img(figs["cmc"], "CMC curves")}{_cmc_table(report)}</section>'
        )
    return sections


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` (the dict, unchanged) and a self-contained ``report.html``.

    Parameters
    ----------
    report : dict
        From :func:`build_report`.
    out_dir : Path
        Created when missing; existing report files are overwritten.

    Returns
    -------
    json_path, html_path : Path

    Raises
    ------
    ValueError
        When the dict holds NaN or infinity (not valid JSON).

    Examples
    --------
    >>> from faceprint.evaluation.report import ModelScores, build_report
    >>> m = ModelScores("m", np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0], bool),
    ...                 np.array([0, 1, 0, 1]), failures_to_acquire=0)
    >>> json_path, html_path = write_report(build_report([m], title="demo"), Path("out"))  # doctest: +SKIP
    """
    out = Path(out_dir)
    text = json.dumps(report, indent=2, allow_nan=False)
    page = render_html(report)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    html_path = out / "report.html"
    json_path.write_text(text + "\n", encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return json_path, html_path
