"""Clustering unknown faces: group the faces of a photo folder by person.

Three layers:

* :func:`cluster_embeddings` clusters unit embeddings on cosine distance (``1 - similarity``)
  with scikit-learn: agglomerative (average / complete / single linkage, cut at a distance
  threshold), DBSCAN or HDBSCAN;
* :func:`pairwise_precision_recall_f1` scores a clustering against true identities over all
  pairs of items (the measure used by ``bench/clustering.py``);
* :func:`cluster_directory` embeds every face of every image under a folder, clusters them and
  writes ``clusters.csv`` and a self-contained HTML contact sheet ``index.html``.

Default method and threshold
----------------------------
Chosen by ``bench/clustering.py`` on LFW identities with at least two images (YuNet + SFace;
numbers in ``bench/results/clustering.json``): average-linkage agglomerative clustering, cut at
the cosine distance ``1 - t`` where ``t`` is the embedder's calibrated similarity threshold at
:data:`DEFAULT_FMR` = ``"1e-4"`` (see :func:`default_threshold`). For SFace that is a cut of
0.627, next to the best cut on the tuning half of the identities (0.625). Pairwise F1 at the
default: 0.983 on the held-out half, 0.984 on all 9,164 images of 1,680 people, 0.974 with at
most 10 images per person (complete linkage 0.872 there; single linkage, DBSCAN and HDBSCAN
0.94-0.97). Clustering compares every face with every other, so it needs a stricter operating
point than 1:1 verification: at SFace's ``1e-3`` point (0.653) precision drops. Tying the cut to
the calibration makes it follow each embedder's own score scale, not a number that suits SFace only.

Labels
------
Cluster ids are ``0 .. k-1`` ordered by cluster size (largest first, ties by first item);
``-1`` marks noise (DBSCAN / HDBSCAN) and members of clusters smaller than ``min_cluster_size``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage

from .errors import FaceprintError, InvalidArgumentError, InvalidEmbeddingError, NotAFolderError, UnknownBackendError
from .types import Detection, Image

if TYPE_CHECKING:
    from .pipeline import FacePipeline

__all__ = [
    "ClusterItem",
    "ClusterFailure",
    "ClusterResult",
    "Method",
    "Linkage",
    "METHODS",
    "DEFAULT_METHOD",
    "DEFAULT_LINKAGE",
    "DEFAULT_FMR",
    "NOISE",
    "cluster_embeddings",
    "default_threshold",
    "pairwise_precision_recall_f1",
    "cluster_directory",
]

log = logging.getLogger(__name__)

Method = Literal["agglomerative", "dbscan", "hdbscan"]
Linkage = Literal["average", "complete", "single"]
METHODS: tuple[str, ...] = ("agglomerative", "dbscan", "hdbscan")
LINKAGES: tuple[str, ...] = ("average", "complete", "single")

DEFAULT_METHOD: Method = "agglomerative"
DEFAULT_LINKAGE: Linkage = "average"
DEFAULT_FMR = "1e-4"
"""Operating point whose calibrated similarity threshold ``t`` gives the default cut ``1 - t``."""

NOISE = -1
"""Label of faces in no cluster (noise, or a cluster smaller than ``min_cluster_size``)."""

THUMB_SIZE = 96
"""Longest side of the contact sheet's face thumbnails, pixels."""

IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# Clustering embeddings
# --------------------------------------------------------------------------------------------


def _check_embeddings(emb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    a = np.asarray(emb, dtype=np.float64)
    if a.ndim != 2:
        raise InvalidEmbeddingError(f"expected embeddings of shape (n, dim), got shape {a.shape}")
    if a.size and not np.isfinite(a).all():
        raise InvalidEmbeddingError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(a, axis=1)
    if a.shape[0] and a.shape[1] and norms.min() < 1e-6:
        raise InvalidEmbeddingError("embeddings contain a zero vector (cosine distance is undefined)")
    if a.shape[0] and a.shape[1] == 0:
        raise InvalidEmbeddingError(f"expected embeddings of shape (n, dim) with dim >= 1, got {a.shape}")
    return a / np.maximum(norms, 1e-12)[:, None] if a.size else a


def _relabel(raw: npt.ArrayLike, min_cluster_size: int) -> IntArray:
    """Clusters renumbered by size (largest first, ties by first member); small clusters and noise -> -1."""
    labels = np.asarray(raw, dtype=np.int64).reshape(-1)
    out = np.full(labels.shape, NOISE, np.int64)
    valid = labels >= 0
    if not valid.any():
        return out
    ids, first, counts = np.unique(labels[valid], return_index=True, return_counts=True)
    keep = counts >= min_cluster_size
    order = np.lexsort((first[keep], -counts[keep]))
    new_id = {int(old): new for new, old in enumerate(ids[keep][order])}
    for i, lab in enumerate(labels):
        if lab >= 0:
            out[i] = new_id.get(int(lab), NOISE)
    return out


def cluster_embeddings(
    emb: npt.ArrayLike,
    *,
    threshold: float,
    method: Method = DEFAULT_METHOD,
    linkage: Linkage = DEFAULT_LINKAGE,
    min_cluster_size: int = 1,
    min_samples: int | None = None,
) -> IntArray:
    """Cluster embeddings on cosine distance ``1 - cos(a, b)``.

    Parameters
    ----------
    emb : array-like, shape (n, dim)
        Embeddings (unit vectors; any non-zero vectors work, cosine ignores their length).
    threshold : float
        A cosine *distance* in ``[0, 2]``. ``agglomerative``: clusters closer than this (by
        ``linkage``) are merged. ``dbscan``: the neighbourhood radius ``eps``. ``hdbscan``:
        ``cluster_selection_epsilon`` (clusters closer than this are not split; 0 = pure HDBSCAN;
        scikit-learn <= 1.9 on NumPy >= 2 can crash on a non-zero value, issue #33219, which is
        raised as :class:`FaceprintError`).
        From an embedder's similarity threshold ``t``, pass ``1 - t`` (:func:`default_threshold`).
    method : {"agglomerative", "dbscan", "hdbscan"}
        ``agglomerative`` has no noise: every face gets a cluster (possibly of one).
    linkage : {"average", "complete", "single"}
        Agglomerative linkage; ignored by the other methods.
    min_cluster_size : int, default 1
        Members of smaller clusters are labelled ``-1``. HDBSCAN uses it as its own
        ``min_cluster_size`` (at least 2).
    min_samples : int, optional
        DBSCAN / HDBSCAN core-point size (the point itself included); default 2 for DBSCAN
        (a face with one neighbour within ``eps`` is a core point) and 1 for HDBSCAN.

    Returns
    -------
    ndarray of int64, shape (n,)
        Cluster ids ``0 .. k-1`` by decreasing cluster size, ``-1`` for noise.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.1, 0.99]], np.float32)
    >>> cluster_embeddings(emb, threshold=0.3).tolist()
    [0, 0, 1, 1]
    """
    if method not in METHODS:
        raise UnknownBackendError(f"unknown clustering method {method!r}; valid: {', '.join(METHODS)}")
    if linkage not in LINKAGES:
        raise InvalidArgumentError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")
    threshold = float(threshold)
    if not 0.0 <= threshold <= 2.0:
        raise InvalidArgumentError(f"threshold is a cosine distance in [0, 2], got {threshold}")
    if min_cluster_size < 1:
        raise InvalidArgumentError(f"min_cluster_size must be >= 1, got {min_cluster_size}")
    if min_samples is not None and min_samples < 1:
        raise InvalidArgumentError(f"min_samples must be >= 1, got {min_samples}")
    x = _check_embeddings(emb)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.int64)
    if n == 1:
        return _relabel([0], min_cluster_size) if method == "agglomerative" else np.full(1, NOISE, np.int64)

    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage=linkage, distance_threshold=threshold)
        raw = model.fit_predict(x)
    elif method == "dbscan":
        from sklearn.cluster import DBSCAN

        # eps must be > 0 for sklearn; a zero radius still joins identical vectors.
        raw = DBSCAN(
            eps=max(threshold, 1e-12), min_samples=2 if min_samples is None else min_samples, metric="cosine"
        ).fit_predict(x)
    else:
        from sklearn.cluster import HDBSCAN

        dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
        np.fill_diagonal(dist, 0.0)
        model = HDBSCAN(
            min_cluster_size=max(2, min_cluster_size),
            min_samples=1 if min_samples is None else min_samples,
            cluster_selection_epsilon=threshold,
            metric="precomputed",
            allow_single_cluster=True,
            copy=False,
        )
        try:
            raw = model.fit_predict(dist)
        except TypeError as err:
            if threshold == 0.0:
                raise
            # scikit-learn issue #33219: a non-zero cluster_selection_epsilon can crash on NumPy >= 2
            raise FaceprintError(
                f"scikit-learn's HDBSCAN failed with cluster_selection_epsilon={threshold} ({err}); "
                "a known scikit-learn bug on NumPy >= 2 (issue #33219): use threshold=0 with hdbscan, "
                "or another method"
            ) from err
    return _relabel(raw, min_cluster_size)


def default_threshold(thresholds: Mapping[str, float], fmr: str = DEFAULT_FMR) -> float:
    """The default cosine-distance cut ``1 - t`` from an embedder's calibrated similarity thresholds.

    Parameters
    ----------
    thresholds : mapping
        ``embedder.thresholds`` (operating point -> cosine-similarity threshold).
    fmr : str
        Operating point (default :data:`DEFAULT_FMR`, chosen by ``bench/clustering.py``). When the
        embedder has no threshold there, the strictest numeric FMR point it has is used (logged).

    Raises
    ------
    FaceprintError
        The embedder has no calibrated FMR threshold at all.

    Examples
    --------
    >>> round(default_threshold({"1e-4": 0.37, "1e-3": 0.35}), 3)
    0.63
    >>> round(default_threshold({"1e-3": 0.35, "1e-2": 0.3}), 3)  # no 1e-4: the strictest point there is
    0.65
    """
    if fmr not in thresholds:
        numeric = {k: float(k) for k in thresholds if _is_number(k)}
        if not numeric:
            valid = ", ".join(sorted(thresholds)) or "none: the embedder is not calibrated"
            raise FaceprintError(
                f"no calibrated threshold at fmr={fmr!r} to derive a clustering threshold "
                f"(available: {valid}); pass threshold= explicitly"
            )
        strictest = min(numeric, key=numeric.__getitem__)
        log.info("no calibrated threshold at fmr=%s; clustering at the strictest one, fmr=%s", fmr, strictest)
        fmr = strictest
    return float(1.0 - float(thresholds[fmr]))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Pairwise metric
# --------------------------------------------------------------------------------------------


def _noise_to_singletons(labels: npt.ArrayLike) -> IntArray:
    raw = np.asarray(labels).reshape(-1)
    if raw.dtype.kind not in "iu":
        # names or other non-integer labels: map to integers (no noise label among them)
        _, inv = np.unique(raw, return_inverse=True)
        return inv.astype(np.int64).reshape(-1)
    a = raw.astype(np.int64)
    noise = a < 0
    if noise.any():
        a = a.copy()
        start = int(a.max(initial=-1)) + 1
        a[noise] = np.arange(start, start + int(noise.sum()))
    return a


def pairwise_precision_recall_f1(true_labels: npt.ArrayLike, pred_labels: npt.ArrayLike) -> tuple[float, float, float]:
    """Pairwise precision, recall and F1 of a clustering over all unordered pairs of items.

    A pair is *predicted same* when both items share a predicted cluster and *truly same* when
    they share a true label. Precision = TP / predicted-same pairs, recall = TP / truly-same
    pairs. Negative integer labels (noise, ``-1``) are singletons: a noise item is paired with
    nothing. Labels may also be strings (names; then no label means noise). Computed from the sparse
    contingency table (:func:`sklearn.metrics.cluster.pair_confusion_matrix`), linear in ``n``, not O(n^2).

    With no predicted-same pair precision is 1.0, with no truly-same pair recall is 1.0 (no pair
    was wrongly merged / missed); F1 is 0.0 when precision + recall is 0.

    Examples
    --------
    >>> pairwise_precision_recall_f1([0, 0, 1, 1], [0, 0, 0, -1])
    (0.3333333333333333, 0.5, 0.4)
    """
    from sklearn.metrics.cluster import pair_confusion_matrix

    t = _noise_to_singletons(true_labels)
    p = _noise_to_singletons(pred_labels)
    if t.shape != p.shape:
        raise InvalidArgumentError(f"true_labels and pred_labels differ in length: {t.shape[0]} vs {p.shape[0]}")
    if t.size < 2:
        return 1.0, 1.0, 1.0
    c = pair_confusion_matrix(t, p)  # ordered pairs: every count is twice the unordered one
    tp, fp, fn = int(c[1, 1]), int(c[0, 1]), int(c[1, 0])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


# --------------------------------------------------------------------------------------------
# Clustering a folder of photos
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterItem:
    """One face found in a photo: ``face_index`` numbers the faces of one file (highest score first)."""

    path: Path
    face_index: int
    detection: Detection
    embedding: npt.NDArray[np.float32]

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.detection.box


@dataclass(frozen=True)
class ClusterFailure:
    """A file under the folder that gave no face: not an image, unreadable, or no face found."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ClusterResult:
    """What :func:`cluster_directory` found and wrote.

    ``labels[i]`` is the cluster of ``items[i]`` (``-1``: in no cluster); ``n_clusters`` counts
    clusters of at least ``min_cluster_size`` faces. ``threshold`` is the cosine-distance cut used.
    """

    items: tuple[ClusterItem, ...]
    labels: IntArray
    n_clusters: int
    failures: tuple[ClusterFailure, ...]
    csv_path: Path
    html_path: Path
    method: str
    threshold: float

    def clusters(self) -> list[list[ClusterItem]]:
        """Items grouped by cluster id ``0 .. n_clusters-1`` (largest first)."""
        groups: list[list[ClusterItem]] = [[] for _ in range(self.n_clusters)]
        for item, lab in zip(self.items, self.labels):
            if lab >= 0:
                groups[int(lab)].append(item)
        return groups


def _list_files(directory: Path, skip: Path | None) -> list[Path]:
    """Every regular file under ``directory`` (sorted, recursive), skipping hidden entries and ``skip``."""
    files: list[Path] = []
    skip_resolved = skip.resolve() if skip is not None else None
    for root, dirs, names in os.walk(directory):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (skip_resolved is None or (here / d).resolve() != skip_resolved)
        )
        files.extend(here / n for n in sorted(names) if not n.startswith(".") and (here / n).is_file())
    return files


def _thumbnail(image: Image, det: Detection, size: int = THUMB_SIZE) -> str:
    """The face box (plus a 15 % margin) as a base64 JPEG data URI, longest side ``size``."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = det.box
    mx, my = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
    c0, r0 = max(int(x1 - mx), 0), max(int(y1 - my), 0)
    c1, r1 = min(int(np.ceil(x2 + mx)), w), min(int(np.ceil(y2 + my)), h)
    if c1 <= c0 or r1 <= r0:
        c0, r0, c1, r1 = 0, 0, w, h
    pil = PILImage.fromarray(np.ascontiguousarray(image[r0:r1, c0:c1]))
    pil.thumbnail((size, size))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rel(path: Path, directory: Path) -> str:
    try:
        return path.relative_to(directory).as_posix()
    except ValueError:
        return str(path)


def _write_csv(
    path: Path, directory: Path, items: Sequence[ClusterItem], labels: IntArray, failures: Sequence[ClusterFailure]
) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "face", "x1", "y1", "x2", "y2", "score", "cluster", "error"])
        for item, lab in zip(items, labels):
            x1, y1, x2, y2 = item.box
            w.writerow(
                [
                    _rel(item.path, directory),
                    item.face_index,
                    f"{x1:.1f}",
                    f"{y1:.1f}",
                    f"{x2:.1f}",
                    f"{y2:.1f}",
                    f"{item.detection.score:.4f}",
                    int(lab),
                    "",
                ]
            )
        for fail in failures:
            w.writerow([_rel(fail.path, directory), "", "", "", "", "", "", "", fail.reason])


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}
.faces{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0;width:100px;text-align:center;font-size:10px;word-break:break-all}
figure img{display:block;margin:0 auto;max-width:96px;max-height:96px;border-radius:3px}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.meta{color:#555}
"""


def _write_html(
    path: Path,
    directory: Path,
    items: Sequence[ClusterItem],
    labels: IntArray,
    thumbs: Sequence[str],
    failures: Sequence[ClusterFailure],
    *,
    n_clusters: int,
    method: str,
    threshold: float,
) -> None:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>faceprint clusters: {esc(str(directory))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Faces in {esc(str(directory))}</h1>",
        f'<p class="meta">{len(items)} faces, {n_clusters} clusters, '
        f"{int((labels < 0).sum())} unclustered, {len(failures)} failures; "
        f"method {esc(method)}, cosine-distance threshold {threshold:.3f}</p>",
    ]

    def section(title: str, anchor: str, members: list[int]) -> None:
        parts.append(f'<section id="{anchor}"><h2>{esc(title)}</h2><div class="faces">')
        for i in members:
            item = items[i]
            name = _rel(item.path, directory)
            caption = name if item.face_index == 0 else f"{name} #{item.face_index}"
            parts.append(
                f'<figure><img src="{thumbs[i]}" alt="{esc(caption)}" title="{esc(caption)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
        parts.append("</div></section>")

    for c in range(n_clusters):
        members = [i for i in range(len(items)) if labels[i] == c]
        section(f"Cluster {c} ({len(members)} faces)", f"cluster-{c}", members)
    noise = [i for i in range(len(items)) if labels[i] < 0]
    if noise:
        section(f"Unclustered ({len(noise)} faces)", "unclustered", noise)
    if failures:
        parts.append(f'<section id="failures"><h2>Failures ({len(failures)} files)</h2><table>')
        parts.append("<tr><th>file</th><th>reason</th></tr>")
        for fail in failures:
            parts.append(f"<tr><td>{esc(_rel(fail.path, directory))}</td><td>{esc(fail.reason)}</td></tr>")
        parts.append("</table></section>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def cluster_directory(
    directory: Path,
    pipeline: FacePipeline,
    *,
    out_dir: Path,
    method: Method = DEFAULT_METHOD,
    linkage: Linkage = DEFAULT_LINKAGE,
    threshold: float | None = None,
    min_cluster_size: int = 2,
    progress: Callable[[int], None] | None = None,
    n_files: Callable[[int], None] | None = None,
) -> ClusterResult:
    """Group the faces of every photo under ``directory`` by person; write a CSV and an HTML contact sheet.

    Every regular file under ``directory`` (recursively, sorted; hidden files and folders and
    ``out_dir`` are skipped) is decoded and searched for faces; each face of a multi-face photo is
    a separate item. Files that are not images, cannot be read or hold no face are listed as
    failures, never raised.

    Writes ``out_dir/clusters.csv`` (columns ``path, face, x1, y1, x2, y2, score, cluster, error``;
    paths relative to ``directory``; cluster ``-1`` = unclustered; failures have an empty cluster
    and an error) and ``out_dir/index.html``: one section per cluster, largest first, with inline
    base64 JPEG face thumbnails (no external files), then unclustered faces, then the failures.

    Parameters
    ----------
    directory : Path
        Folder of photos.
    pipeline : FacePipeline
        Detector + embedder (every face above ``pipeline.min_face_size`` is used).
    out_dir : Path
        Where the CSV and HTML go (created if needed).
    method, linkage, min_cluster_size
        See :func:`cluster_embeddings`. With the default ``min_cluster_size=2`` a face that
        matches nobody is "unclustered" (``-1``) rather than a cluster of one.
    threshold : float, optional
        Cosine-distance cut; default :func:`default_threshold` of the pipeline's embedder
        (``1 - t`` at :data:`DEFAULT_FMR`).
    progress : callable, optional
        Called with 1 after each file.
    n_files : callable, optional
        Called once with the number of files found, before any work (to size a progress bar).

    Returns
    -------
    ClusterResult

    Raises
    ------
    NotAFolderError
        ``directory`` is not a folder.
    FaceprintError
        ``threshold`` is None and the embedder has no calibrated FMR threshold.

    Examples
    --------
    >>> from faceprint import FacePipeline
    >>> result = cluster_directory(Path("photos"), FacePipeline(), out_dir=Path("out"))  # doctest: +SKIP
    >>> result.n_clusters, result.html_path  # doctest: +SKIP
    (12, PosixPath('out/index.html'))
    """
    directory = Path(directory)
    out_dir = Path(out_dir)
    if not directory.is_dir():
        raise NotAFolderError(f"{directory}: not a directory")
    if method not in METHODS:
        raise UnknownBackendError(f"unknown clustering method {method!r}; valid: {', '.join(METHODS)}")
    if threshold is None:
        threshold = default_threshold(pipeline.embedder.thresholds)  # type: ignore[union-attr]

    files = _list_files(directory, out_dir)
    if n_files is not None:
        n_files(len(files))
    items: list[ClusterItem] = []
    thumbs: list[str] = []
    failures: list[ClusterFailure] = []
    for path in files:
        try:
            image = pipeline.load(path)
            faces = pipeline.faces(image, select="all")
            if not faces:
                failures.append(ClusterFailure(path, "no face found"))
            for k, face in enumerate(faces):
                items.append(ClusterItem(path, k, face.detection, face.embedding))
                thumbs.append(_thumbnail(image, face.detection))
        except FaceprintError as err:
            failures.append(ClusterFailure(path, _reason(err, path)))
        except (OSError, ValueError) as err:  # e.g. a file that vanished mid-run
            failures.append(ClusterFailure(path, f"{type(err).__name__}: {err}"))
        if progress is not None:
            progress(1)
    log.info("%d faces in %d files, %d failures", len(items), len(files), len(failures))

    if items:
        emb = np.stack([it.embedding for it in items])
        labels = cluster_embeddings(
            emb, threshold=threshold, method=method, linkage=linkage, min_cluster_size=min_cluster_size
        )
    else:
        labels = np.zeros(0, np.int64)
    n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0

    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out_dir / "clusters.csv", out_dir / "index.html"
    _write_csv(csv_path, directory, items, labels, failures)
    _write_html(
        html_path,
        directory,
        items,
        labels,
        thumbs,
        failures,
        n_clusters=n_clusters,
        method=method if method != "agglomerative" else f"agglomerative ({linkage} linkage)",
        threshold=threshold,
    )
    return ClusterResult(
        items=tuple(items),
        labels=labels,
        n_clusters=n_clusters,
        failures=tuple(failures),
        csv_path=csv_path,
        html_path=html_path,
        method=method,
        threshold=float(threshold),
    )


def _reason(err: Exception, path: Path) -> str:
    """The error message without the leading ``<path>: `` that load_image puts there."""
    msg = str(err)
    prefix = f"{path}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg
