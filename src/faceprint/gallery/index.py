"""Vector indexes for galleries that search templates in process, on the one backend registry.

A :class:`VectorIndex` is an inner-product index over unit vectors keyed by int64 ids; backends
register on :data:`INDEXES` (a :class:`faceprint.registry.Registry`) and are built by
:func:`make_index`: ``exact`` (:class:`ExactIndex`, numpy), ``hnsw`` / ``hnsw-f16`` / ``hnsw-i8``
(:class:`HNSWIndex`, usearch's HNSW graph with float32, float16 or int8 vectors) and ``auto``
(:class:`AutoIndex`: exact below a size, HNSW from there on). :class:`TemplateIndex` wraps one with
what a store-backed gallery needs to rank hits by subject: the subject of each template,
per-subject template counts and names.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceprint.registry import Registry

from ..errors import InvalidArgumentError
from .base import TemplateHits

__all__ = [
    "VectorIndex", "ScoringIndex", "ExactIndex", "HNSWIndex", "AutoIndex", "INDEXES", "make_index", "TemplateIndex",
    "HNSW_DTYPES", "DEFAULT_EF", "DEFAULT_CONNECTIVITY", "DEFAULT_EXPANSION_ADD", "DEFAULT_EXACT_BELOW",
]

Float32Array = npt.NDArray[np.float32]
Int64Array = npt.NDArray[np.int64]


@runtime_checkable
class VectorIndex(Protocol):
    """An inner-product index over unit vectors, keyed by int64 ids.

    Because stored vectors are L2-normalised, the inner product is the cosine similarity.
    """

    dim: int

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        """Add ``vectors`` (n, dim) float32 under ``ids`` (n,) int64; ids must be new."""
        ...

    def remove(self, ids: Int64Array) -> None:
        """Remove the vectors stored under ``ids``; unknown ids are ignored."""
        ...

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        """Return ``(sims, ids)``, both (m, k), each row sorted by similarity descending.

        Rows are padded with ``-inf`` similarities and ``-1`` ids when fewer than ``k``
        vectors are stored.
        """
        ...

    def __len__(self) -> int: ...


@runtime_checkable
class ScoringIndex(VectorIndex, Protocol):
    """A :class:`VectorIndex` that also reports the similarity of given ids, as its search would."""

    def score(self, queries: Float32Array, ids: Int64Array) -> Float32Array:
        """Similarities ``(m, len(ids))``; ``-inf`` for an id that is not stored."""
        ...


INDEXES: Registry[VectorIndex] = Registry("index")
"""Registered index backends: name -> factory taking ``dim`` (``@INDEXES.register("name")``)."""


def make_index(name: str, dim: int, **options: Any) -> VectorIndex:
    """Build the index backend registered as ``name`` for vectors of dimension ``dim``.

    ``options`` go to the backend (e.g. ``ef=`` for ``hnsw``, ``exact_below=`` for ``auto``).

    Raises
    ------
    ValueError
        If no backend of that name is registered; the message lists the valid names.

    Examples
    --------
    >>> index = make_index("exact", 128)
    >>> len(index)
    0
    """
    return INDEXES.factory(name)(dim, **options)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_k(k: object) -> int:
    return _positive_int("k", k)


def _additions(ids: Int64Array, vectors: Float32Array, dim: int) -> tuple[Int64Array, Float32Array]:
    """``(ids, vectors)`` as int64 (n,) and float32 (n, dim); else InvalidArgumentError."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape != (ids.shape[0], dim):
        raise InvalidArgumentError(f"expected vectors of shape ({ids.shape[0]}, {dim}), got {vectors.shape}")
    return ids, vectors


def _queries(queries: Float32Array, dim: int) -> Float32Array:
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise InvalidArgumentError(f"expected queries of shape (m, {dim}), got {queries.shape}")
    return queries


@INDEXES.register("exact")
class ExactIndex:
    """Brute-force inner-product index held in a numpy matrix.

    Exact and dependency-free; a search costs one ``(m, dim) @ (dim, n)`` product, so it suits
    galleries up to a few hundred thousand templates.

    Parameters
    ----------
    dim : int
        Dimension of the stored vectors.

    Examples
    --------
    >>> import numpy as np
    >>> index = ExactIndex(2)
    >>> index.add(np.array([7, 9]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    >>> sims, ids = index.search(np.array([[1, 0]], dtype=np.float32), k=3)
    >>> ids.tolist()
    [[7, 9, -1]]
    """

    _BLOCK_ELEMENTS = 1 << 24  # bound the (m, n) similarity block to 64 MiB of float32

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise InvalidArgumentError(f"dim must be a positive integer, got {dim!r}")
        self.dim: int = int(dim)
        self._n: int = 0
        self._ids: Int64Array = np.empty(0, dtype=np.int64)
        self._vectors: Float32Array = np.empty((0, self.dim), dtype=np.float32)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ExactIndex(dim={self.dim}, n={self._n})"

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        ids, vectors = _additions(ids, vectors, self.dim)
        if ids.size == 0:
            return
        if np.unique(ids).size != ids.size or np.isin(ids, self._ids[: self._n]).any():
            raise InvalidArgumentError("ids must be unique and not already in the index")
        needed = self._n + ids.size
        if needed > self._ids.shape[0]:
            capacity = max(needed, 2 * self._ids.shape[0], 16)
            new_ids = np.empty(capacity, dtype=np.int64)
            new_vectors = np.empty((capacity, self.dim), dtype=np.float32)
            new_ids[: self._n] = self._ids[: self._n]
            new_vectors[: self._n] = self._vectors[: self._n]
            self._ids, self._vectors = new_ids, new_vectors
        self._ids[self._n : needed] = ids
        self._vectors[self._n : needed] = vectors
        self._n = needed

    def remove(self, ids: Int64Array) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size == 0 or self._n == 0:
            return
        keep = ~np.isin(self._ids[: self._n], ids)
        kept = int(keep.sum())
        if kept == self._n:
            return
        self._ids[:kept] = self._ids[: self._n][keep]
        self._vectors[:kept] = self._vectors[: self._n][keep]
        self._n = kept

    def contents(self) -> tuple[Int64Array, Float32Array]:
        """Copies of the stored ``(ids, vectors)``, in insertion order (removals compacted)."""
        return self._ids[: self._n].copy(), self._vectors[: self._n].copy()

    def _check_queries(self, queries: Float32Array) -> Float32Array:
        return _queries(queries, self.dim)

    def _similarity_blocks(self, queries: Float32Array) -> Iterator[tuple[int, Float32Array]]:
        """``(start, sims)`` for consecutive row blocks of ``queries``; sims is (b, n)."""
        n = self._n
        vectors = self._vectors[:n]
        block = max(1, self._BLOCK_ELEMENTS // n)
        for start in range(0, queries.shape[0], block):
            yield start, queries[start : start + block] @ vectors.T

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        queries = self._check_queries(queries)
        k = _check_k(k)
        m, n = queries.shape[0], self._n
        out_sims = np.full((m, k), -np.inf, dtype=np.float32)
        out_ids = np.full((m, k), -1, dtype=np.int64)
        if m == 0 or n == 0:
            return out_sims, out_ids
        kk = min(int(k), n)
        ids = self._ids[:n]
        for start, sims in self._similarity_blocks(queries):
            if kk < n:
                top = np.argpartition(sims, n - kk, axis=1)[:, n - kk :]
            else:
                top = np.broadcast_to(np.arange(n), sims.shape)
            top_sims = np.take_along_axis(sims, top, axis=1)
            top_ids = ids[top]
            # Similarity descending, ties broken by id ascending (deterministic).
            order = np.lexsort((top_ids, -top_sims), axis=-1)
            stop = start + sims.shape[0]
            out_sims[start:stop, :kk] = np.take_along_axis(top_sims, order, axis=1)
            out_ids[start:stop, :kk] = np.take_along_axis(top_ids, order, axis=1)
        return out_sims, out_ids

    def score(self, queries: Float32Array, ids: Int64Array) -> Float32Array:
        """Similarities ``(m, len(ids))`` of each query with the vectors stored under ``ids``.

        Bit for bit the values :meth:`search` reports for those ids (the same product is
        computed); ``-inf`` for an id that is not stored.
        """
        queries = self._check_queries(queries)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.full((queries.shape[0], ids.size), -np.inf, dtype=np.float32)
        n = self._n
        if queries.shape[0] == 0 or n == 0 or ids.size == 0:
            return out
        stored = self._ids[:n]
        order = np.argsort(stored, kind="stable")
        positions = np.clip(np.searchsorted(stored[order], ids), 0, n - 1)
        found = stored[order][positions] == ids
        columns = order[positions[found]]
        for start, sims in self._similarity_blocks(queries):
            out[start : start + sims.shape[0], found] = sims[:, columns]
        return out


HNSW_DTYPES = ("f32", "f16", "i8")
"""Vector storage of :class:`HNSWIndex`: float32 (similarities as exact's, to float rounding),
float16 (about 1e-4 off) or int8 (about 1e-2 off, a quarter of f32's memory)."""

DEFAULT_CONNECTIVITY = 16
"""HNSW graph links per node (``M``), fixed when the index is built."""

DEFAULT_EXPANSION_ADD = 128
"""HNSW candidate list while inserting (``efConstruction``)."""

DEFAULT_EF = 256
"""HNSW candidate list while searching (``ef``): recall against time, see ``bench/scale.py``."""

DEFAULT_EXACT_BELOW = 250_000
""":class:`AutoIndex` searches exactly below this many templates (``bench/scale.py``)."""



@INDEXES.register("hnsw")
class HNSWIndex:
    """Approximate inner-product index: an HNSW graph (``usearch``, Apache-2.0) over unit vectors.

    A search visits ``ef`` candidates instead of every vector, at the price of sometimes missing
    the true nearest one (recall < 1; ``ef`` trades recall for time and can be changed at any time);
    an index of at most ``ef`` vectors, or a search for at least as many hits as it holds, scores
    every vector instead. Similarities are the graph's cosine
    similarities of the stored vectors: with ``dtype="f32"`` the same as :class:`ExactIndex`'s to
    float rounding, with ``f16`` / ``i8`` a little off (see :data:`HNSW_DTYPES`); the gallery
    compares them with the same thresholds. Removed vectors leave the graph at once.

    Parameters
    ----------
    dim : int
        Dimension of the stored vectors.
    dtype : {"f32", "f16", "i8"}, default "f32"
        How the graph stores vectors.
    ef : int, default DEFAULT_EF
        Candidates a search visits (``expansion_search``).
    connectivity : int, default DEFAULT_CONNECTIVITY
        Links per node (``M``).
    expansion_add : int, default DEFAULT_EXPANSION_ADD
        Candidates an insertion visits (``efConstruction``).

    Examples
    --------
    >>> import numpy as np
    >>> index = HNSWIndex(2)
    >>> index.add(np.array([7, 9]), np.array([[1, 0], [0, 1]], dtype=np.float32))
    >>> sims, ids = index.search(np.array([[1, 0]], dtype=np.float32), k=3)
    >>> ids.tolist()
    [[7, 9, -1]]
    """

    def __init__(
        self,
        dim: int,
        *,
        dtype: str = "f32",
        ef: int = DEFAULT_EF,
        connectivity: int = DEFAULT_CONNECTIVITY,
        expansion_add: int = DEFAULT_EXPANSION_ADD,
    ) -> None:
        from usearch.index import Index

        self.dim: int = _positive_int("dim", dim)
        if dtype not in HNSW_DTYPES:
            raise InvalidArgumentError(f"dtype must be one of {list(HNSW_DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        self.connectivity = _positive_int("connectivity", connectivity)
        self.expansion_add = _positive_int("expansion_add", expansion_add)
        # cos, not ip: on unit vectors they agree, and usearch scales int8 products only for cos
        self._index = Index(
            ndim=self.dim, metric="cos", dtype=dtype, connectivity=self.connectivity,
            expansion_add=self.expansion_add, expansion_search=_positive_int("ef", ef),
        )

    @property
    def ef(self) -> int:
        """Candidates a search visits; set it to trade recall for time."""
        return int(self._index.expansion_search)

    @ef.setter
    def ef(self, value: int) -> None:
        self._index.expansion_search = _positive_int("ef", value)  # type: ignore[misc]  # a setter at run time

    @property
    def memory_bytes(self) -> int:
        """Bytes the graph and its vectors hold (usearch's own count)."""
        return int(self._index.memory_usage)

    def __len__(self) -> int:
        return len(self._index)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the graph and its vectors to ``path`` (usearch's format)."""
        self._index.save(os.fspath(path))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Replace the contents with a graph :meth:`save` wrote (same dim, dtype and connectivity;
        check the file's integrity first: the reader trusts it)."""
        ef = self.ef
        self._index.load(os.fspath(path))
        if self._index.ndim != self.dim or self._index.connectivity != self.connectivity:
            raise InvalidArgumentError(f"{path} holds an index of another shape ({self._index.ndim}-d)")
        self.ef = ef

    def keys(self) -> Int64Array:
        """The stored ids."""
        return np.asarray(self._index.keys, dtype=np.int64)

    @property
    def graph(self) -> HNSWIndex:
        return self

    def new_graph(self) -> HNSWIndex:
        return HNSWIndex(
            self.dim, dtype=self.dtype, ef=self.ef, connectivity=self.connectivity, expansion_add=self.expansion_add
        )

    def adopt(self, graph: HNSWIndex) -> None:
        self._index = graph._index
        self.removed_any = graph.removed_any

    def __repr__(self) -> str:
        return f"HNSWIndex(dim={self.dim}, n={len(self)}, dtype={self.dtype!r}, ef={self.ef})"

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        ids, vectors = _additions(ids, vectors, self.dim)
        if ids.size == 0:
            return
        if (ids < 0).any():
            raise InvalidArgumentError("HNSW index ids must be >= 0")
        keys = ids.astype(np.uint64)
        if np.unique(ids).size != ids.size or np.asarray(self._index.contains(keys)).any():
            raise InvalidArgumentError("ids must be unique and not already in the index")
        from ..runtime import get_num_threads

        self._index.add(keys, np.ascontiguousarray(vectors), threads=get_num_threads())

    def remove(self, ids: Int64Array) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        ids = ids[ids >= 0]
        if ids.size and len(self._index):
            if self._index.remove(ids.astype(np.uint64)):
                self.removed_any = True

    removed_any: bool = False
    """Whether a vector was removed: usearch unlinks it from the graph but keeps its bytes (in memory
    and in a saved file) until the graph is built afresh, so such a graph is not saved."""

    def _check_queries(self, queries: Float32Array) -> Float32Array:
        return _queries(queries, self.dim)

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        queries = self._check_queries(queries)
        k = _check_k(k)
        m = queries.shape[0]
        out_sims = np.full((m, k), -np.inf, dtype=np.float32)
        out_ids = np.full((m, k), -1, dtype=np.int64)
        if m == 0 or len(self._index) == 0:
            return out_sims, out_ids
        from ..runtime import get_num_threads

        if k >= len(self._index) or len(self._index) <= self.ef:
            # everything asked for, or no more vectors than a walk visits: every stored vector, exactly
            # (a walk can miss a node the graph's pruning left unreachable)
            keys = np.broadcast_to(self.keys(), (m, len(self._index)))
            counts = np.full(m, keys.shape[1])
        else:
            # one thread for a few queries (the service runs one search per inference thread)
            threads = 1 if m < 16 else get_num_threads()
            found = self._index.search(np.ascontiguousarray(queries), k, threads=threads)
            keys = np.asarray(found.keys).reshape(m, -1).astype(np.int64)
            # one query comes back as Matches (its hits only), several as BatchMatches (padded, with counts)
            counts = np.asarray(getattr(found, "counts", [keys.shape[1]])).reshape(m)
        for row in range(m):
            hits = keys[row, : int(counts[row])]
            if hits.size == 0:
                continue
            sims = self._similarities(queries[row], hits)  # the stored vectors' own products, as score's
            order = np.lexsort((hits, -sims))[:k]  # similarity descending, ties by id ascending
            out_sims[row, : order.size] = sims[order]
            out_ids[row, : order.size] = hits[order]
        return out_sims, out_ids

    def _similarities(self, query: Float32Array, ids: Int64Array) -> Float32Array:
        """float32 products of ``query`` (dim,) with the stored vectors of ``ids`` (all stored).

        One einsum per query row, so :meth:`search` and :meth:`score` give the same bits for the same
        pair; int8 codes are scaled to unit length first (their direction is the vector's).
        """
        stored = np.asarray(self._index.get(ids.astype(np.uint64)), dtype=np.float32).reshape(-1, self.dim)
        if self.dtype == "i8":
            stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), np.float32(1e-12))
        return np.einsum("nd,d->n", stored, query).astype(np.float32, copy=False)

    def score(self, queries: Float32Array, ids: Int64Array) -> Float32Array:
        """Similarities ``(m, len(ids))`` with the stored vectors of ``ids`` (``-inf`` if not stored),
        bit for bit what :meth:`search` reports for them."""
        queries = self._check_queries(queries)
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.full((queries.shape[0], ids.size), -np.inf, dtype=np.float32)
        if queries.shape[0] == 0 or ids.size == 0 or len(self._index) == 0:
            return out
        present = (ids >= 0) & np.asarray(self._index.contains(np.where(ids >= 0, ids, 0).astype(np.uint64)))
        if present.any():
            for row in range(queries.shape[0]):
                out[row, present] = self._similarities(queries[row], ids[present])
        return out


@INDEXES.register("hnsw-f16")
def _hnsw_f16(dim: int, **options: Any) -> HNSWIndex:
    return HNSWIndex(dim, dtype="f16", **options)


@INDEXES.register("hnsw-i8")
def _hnsw_i8(dim: int, **options: Any) -> HNSWIndex:
    return HNSWIndex(dim, dtype="i8", **options)


@INDEXES.register("auto")
class AutoIndex:
    """Exact search below ``exact_below`` vectors, an :class:`HNSWIndex` from there on.

    Starts as an :class:`ExactIndex`; the add that reaches ``exact_below`` builds the HNSW graph
    from everything stored and searches it from then on (it does not switch back when removals
    shrink it; a rebuild of the gallery's index chooses again).

    Parameters
    ----------
    dim : int
        Dimension of the stored vectors.
    exact_below : int, default DEFAULT_EXACT_BELOW
        Size from which the HNSW graph is used.
    dtype, ef, connectivity, expansion_add
        Of the HNSW graph (:class:`HNSWIndex`).
    """

    def __init__(self, dim: int, *, exact_below: int = DEFAULT_EXACT_BELOW, **hnsw: Any) -> None:
        self.dim: int = _positive_int("dim", dim)
        self.exact_below = _positive_int("exact_below", exact_below)
        HNSWIndex(1, **hnsw)  # bad HNSW options fail now, not at the switch
        self._hnsw_options = hnsw
        self._inner: ExactIndex | HNSWIndex = ExactIndex(self.dim)

    @property
    def approximate(self) -> bool:
        """Whether searches go to the HNSW graph now."""
        return isinstance(self._inner, HNSWIndex)

    @property
    def graph(self) -> HNSWIndex | None:
        """The HNSW graph searches go to, or None while exact."""
        return self._inner if isinstance(self._inner, HNSWIndex) else None

    def new_graph(self) -> HNSWIndex:
        """An empty graph with this index's HNSW options (to :meth:`HNSWIndex.load` into)."""
        return HNSWIndex(self.dim, **self._hnsw_options)

    def adopt(self, graph: HNSWIndex) -> None:
        """Search ``graph`` from now on (one loaded from disk), whatever its size."""
        self._inner = graph

    def __len__(self) -> int:
        return len(self._inner)

    def __repr__(self) -> str:
        return f"AutoIndex(exact_below={self.exact_below}, now={self._inner!r})"

    def add(self, ids: Int64Array, vectors: Float32Array) -> None:
        inner = self._inner
        if isinstance(inner, ExactIndex) and len(inner) + np.asarray(ids).size >= self.exact_below:
            graph = HNSWIndex(self.dim, **self._hnsw_options)
            held_ids, held_vectors = inner.contents()
            graph.add(held_ids, held_vectors)
            graph.add(ids, vectors)  # checks as ExactIndex.add would; on refusal the exact index stays
            self._inner = graph
            return
        inner.add(ids, vectors)

    def remove(self, ids: Int64Array) -> None:
        self._inner.remove(ids)

    def search(self, queries: Float32Array, k: int) -> tuple[Float32Array, Int64Array]:
        return self._inner.search(queries, k)

    def score(self, queries: Float32Array, ids: Int64Array) -> Float32Array:
        return self._inner.score(queries, ids)


class TemplateIndex:
    """A :class:`VectorIndex` over a gallery's templates, plus the template -> subject map.

    The in-memory search state of a store-backed gallery: built from the store with
    :meth:`build`, kept in step by :meth:`added` / :meth:`removed` / :meth:`renamed`, and
    answering :meth:`search` with :class:`~faceprint.gallery.base.TemplateHits` for the shared
    ranking. Not thread-safe on its own: the gallery's lock guards it.

    Parameters
    ----------
    name : str
        Index backend in :data:`INDEXES`.
    """

    def __init__(self, name: str, **options: Any) -> None:
        factory = INDEXES.factory(name)  # unknown names fail here, listing the valid ones
        try:
            factory(1, **options)  # and bad options
        except TypeError as err:
            raise InvalidArgumentError(f"index {name!r}: {err}") from None
        self.name = name
        self.options = options
        self.ready = False
        self._clear()

    def _clear(self) -> None:
        self._index: VectorIndex | None = None
        self._template_subject: dict[int, int] = {}
        self._subject_templates: dict[int, set[int]] = {}
        self._subject_count: dict[int, int] = {}
        self._subject_name: dict[int, str] = {}
        self._max_templates = 0
        self._lookup: tuple[Int64Array, Int64Array] | None = None

    def invalidate(self) -> None:
        """Forget everything; the next search must :meth:`build` again."""
        self.ready = False
        self._clear()

    def __len__(self) -> int:
        return 0 if self._index is None else len(self._index)

    def build(
        self,
        template_ids: Int64Array,
        subject_ids: Int64Array,
        vectors: Float32Array | None,
        names: dict[int, str],
    ) -> None:
        """Replace the state with these templates (``vectors`` None when there are none)."""
        self._clear()
        if vectors is not None and template_ids.size:
            index = make_index(self.name, vectors.shape[1], **self.options)
            index.add(template_ids, vectors)
            self._index = index
        self._template_subject = dict(zip(template_ids.tolist(), subject_ids.tolist(), strict=True))
        owned: dict[int, set[int]] = {}
        for template_id, subject_id in self._template_subject.items():
            owned.setdefault(subject_id, set()).add(template_id)
        self._subject_templates = owned
        counts = {subject_id: len(ids) for subject_id, ids in owned.items()}
        self._subject_count = counts
        self._subject_name = dict(names)
        self._max_templates = max(counts.values(), default=0)
        self.ready = True

    def added(self, subject_id: int, name: str, template_ids: Int64Array, vectors: Float32Array) -> None:
        """Record templates just committed for ``subject_id``; raises if the index refuses them."""
        if self._index is None:
            self._index = make_index(self.name, vectors.shape[1], **self.options)
        self._index.add(template_ids, vectors)
        owned = self._subject_templates.setdefault(subject_id, set())
        for template_id in template_ids.tolist():
            self._template_subject[template_id] = subject_id
            owned.add(template_id)
        count = len(owned)
        self._subject_count[subject_id] = count
        self._subject_name[subject_id] = name
        self._max_templates = max(self._max_templates, count)
        if self._lookup is not None:  # merge into the sorted lookup rather than rebuild it
            keys, values = self._lookup
            new_keys = np.sort(np.asarray(template_ids, dtype=np.int64).reshape(-1))
            new_values = np.full(new_keys.size, subject_id, dtype=np.int64)
            if keys.size == 0 or new_keys.size == 0 or new_keys[0] > keys[-1]:  # the usual case: newer ids
                self._lookup = (np.concatenate([keys, new_keys]), np.concatenate([values, new_values]))
            else:
                keys, values = np.concatenate([keys, new_keys]), np.concatenate([values, new_values])
                order = np.argsort(keys, kind="stable")
                self._lookup = (keys[order], values[order])

    def removed(self, subject_id: int, template_ids: Int64Array) -> None:
        """Forget templates of ``subject_id`` just deleted; raises if the index refuses.

        The subject itself is forgotten once none of its templates is left (a removed subject
        is given with all its templates).
        """
        if self._index is not None:
            self._index.remove(template_ids)
        owned = self._subject_templates.get(subject_id, set())
        for template_id in template_ids.tolist():
            self._template_subject.pop(template_id, None)
            owned.discard(template_id)
        if owned:
            self._subject_count[subject_id] = len(owned)
        else:
            self._subject_templates.pop(subject_id, None)
            self._subject_count.pop(subject_id, None)
            self._subject_name.pop(subject_id, None)
        self._max_templates = max(self._subject_count.values(), default=0)
        if self._lookup is not None:
            keys, values = self._lookup
            keep = ~np.isin(keys, np.asarray(template_ids, dtype=np.int64))
            self._lookup = (keys[keep], values[keep])

    def renamed(self, subject_id: int, name: str) -> None:
        """Record a subject's new name."""
        self._subject_name[subject_id] = name

    @property
    def graph(self) -> HNSWIndex | None:
        """The HNSW graph searches go to (the state worth saving), or None."""
        return getattr(self._index, "graph", None) if self._index is not None else None

    def maps(self) -> tuple[Int64Array, Int64Array, dict[int, str]]:
        """``(template ids, their subject ids, subject id -> name)``: what :meth:`restore` takes back."""
        n = len(self._template_subject)
        template_ids = np.fromiter(self._template_subject.keys(), dtype=np.int64, count=n)
        subject_ids = np.fromiter(self._template_subject.values(), dtype=np.int64, count=n)
        return template_ids, subject_ids, dict(self._subject_name)

    def restore(self, dim: int, graph_file: str | os.PathLike[str], template_ids: Int64Array,
                subject_ids: Int64Array, names: dict[int, str]) -> None:
        """The state :meth:`maps` and the graph's ``save`` described, loaded back; raises (and stays
        not ready) if the graph file does not hold exactly ``template_ids``."""
        index = make_index(self.name, dim, **self.options)
        if not isinstance(index, (HNSWIndex, AutoIndex)):
            raise InvalidArgumentError(f"index {self.name!r} cannot load a saved graph")
        graph = index.new_graph()
        graph.load(graph_file)
        held = np.sort(graph.keys())
        if held.size != template_ids.size or not np.array_equal(held, np.sort(template_ids)):
            raise InvalidArgumentError(f"{graph_file} does not hold the templates its maps name")
        index.adopt(graph)
        self.build(template_ids, subject_ids, None, names)
        self._index = index

    def subject_templates(self, subject_id: int) -> frozenset[int]:
        """Ids of the templates of ``subject_id`` the index holds (empty for an unknown subject)."""
        return frozenset(self._subject_templates.get(subject_id, ()))

    def subject_name(self, subject_id: int) -> str | None:
        """The name the index holds for ``subject_id``; None for an unknown subject."""
        return self._subject_name.get(subject_id)

    def _sorted_lookup(self) -> tuple[Int64Array, Int64Array]:
        if self._lookup is None:
            n = len(self._template_subject)
            keys = np.fromiter(self._template_subject.keys(), dtype=np.int64, count=n)
            values = np.fromiter(self._template_subject.values(), dtype=np.int64, count=n)
            order = np.argsort(keys)
            self._lookup = (keys[order], values[order])
        return self._lookup

    def _template_to_subject(self, template_ids: Int64Array) -> Int64Array:
        keys, values = self._sorted_lookup()
        if keys.size == 0:
            return np.full(template_ids.shape, -1, dtype=np.int64)
        positions = np.clip(np.searchsorted(keys, template_ids), 0, keys.size - 1)
        return np.where(keys[positions] == template_ids, values[positions], -1)

    def search(self, queries: Float32Array, k: int) -> TemplateHits:
        """Template hits that contain the best template of each of the ``k`` best subjects."""
        m = queries.shape[0]
        index = self._index
        if index is None or len(index) == 0:
            empty = np.empty((m, 0))
            return TemplateHits(empty.astype(np.float32), empty.astype(np.int64), {})
        # Each subject holds at most max_templates templates, so the top k * max_templates
        # templates contain the best template of each of the top k subjects.
        k_templates = min(len(index), int(k) * max(self._max_templates, 1))
        sims, template_ids = index.search(queries, k_templates)
        return TemplateHits(sims, self._template_to_subject(template_ids), self._subject_name)

    @property
    def can_score(self) -> bool:
        """Whether the index reports the similarities of given ids as its search would (:meth:`ExactIndex.score`)."""
        return isinstance(self._index, ScoringIndex)

    def score(self, query: Float32Array, subject_ids: list[int]) -> list[tuple[int, str, float]]:
        """``(id, name, best similarity)`` of each known subject, as a full search would report it."""
        index = self._index
        if not isinstance(index, ScoringIndex):
            raise TypeError(f"index {self.name!r} cannot score given ids")
        keys, values = self._sorted_lookup()
        wanted = np.isin(values, np.asarray(subject_ids, dtype=np.int64))
        template_ids, owners = keys[wanted], values[wanted]
        sims = index.score(query, template_ids)[0]
        best: dict[int, float] = {}
        for owner, sim in zip(owners.tolist(), sims.tolist(), strict=True):
            if owner not in best or sim > best[owner]:
                best[owner] = sim
        return [(i, self._subject_name[i], best[i]) for i in subject_ids if i in best]
