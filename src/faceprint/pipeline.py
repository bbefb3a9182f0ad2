"""The user-facing pipeline: detect -> align -> embed -> verify / identify / enroll.

Two tiers (see STYLE.md): plain functions (:func:`detect`, :func:`embed`, :func:`verify`,
:func:`enroll`, :func:`identify`) backed by a lazily built default :class:`FacePipeline`, and the
:class:`FacePipeline` object for full control over detector, embedder and options.

Which face a call uses is its ``select=``: ``"largest"`` (the default where one face is used),
``"central"``, ``"error"`` (exactly one, else :class:`~faceprint.errors.MultipleFacesError`) and,
where a list per face comes back (``detect``, ``faces``, ``identify``; default there), ``"all"``.
The table is in :mod:`faceprint.detection`.

A :class:`PipelineSpec` describes a pipeline by value (detector and embedder specs and the options):
:meth:`FacePipeline.from_spec` rebuilds it in another process, and a pipeline pickles as its spec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .detection import (
    LARGEST,
    Detector,
    DetectorSpec,
    OneFace,
    Selection,
    SpecifiedDetector,
    check_selection,
    get_detector,
    resolve_one_face,
    select_faces,
)
from .embedding import Embedder, EmbedderSpec, get_embedder
from .errors import (
    EmbedderMismatchError,
    FaceprintError,
    InvalidArgumentError,
    ModelNotFoundError,
    MultipleFacesError,
    NoFaceError,
)
from .io import ImageInput, describe_source, load_image
from .runtime import lazy_singleton
from .scorenorm import SCORE_NORMALIZERS, ScoreNormalizer, get_score_normalizer, shipped_score_normalizer_names
from .types import (
    LIVENESS_UNSURE,
    SPOOF,
    Detection,
    Face,
    HasLiveness,
    Image,
    Liveness,
    LivenessOption,
    LivenessRejection,
    Match,
    Verification,
)

if TYPE_CHECKING:
    from .gallery import GalleryBackend, Subject

__all__ = [
    "FacePipeline",
    "PipelineSpec",
    "Identification",
    "default_pipeline",
    "detect",
    "embed",
    "verify",
    "enroll",
    "identify",
    "UNKNOWN",
    "SPOOF",
    "LIVENESS_UNSURE",
    "LivenessRejection",
    "LivenessOption",
    "HasLiveness",
]

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
@dataclass(frozen=True)
class Identification:
    """1:N result for one face: the top-k candidates and the decision.

    ``name`` is the best candidate's name when its similarity reaches the threshold, else
    :data:`UNKNOWN` (open-set rejection).
    """

    detection: Detection
    matches: tuple[Match, ...]
    name: str
    threshold: float
    fmr: str
    """The per-comparison false-match rate of ``threshold``: the 1:1 operating point (``"1e-3"``), or
    with ``fpir`` the rate derived from it and the gallery size (``"1.01e-05"``)."""
    probabilities: tuple[tuple[str, float], ...] = ()
    """Top-k (name, probability) from a classifier, when one was used (see ``identify``)."""
    liveness: Liveness | None = None
    """The presentation-attack check of this face, when one was asked for."""
    fpir: str | None = None
    """The false-positive identification rate the threshold was set for (``identify(..., fpir=)``), else None."""
    gallery_size: int | None = None
    """Templates in the gallery when the FPIR threshold was set (None without ``fpir``)."""
    score_norm: str | None = None
    """The score normaliser that ranked the top candidates and decided (its key), else None; ``threshold``
    is then on the normalised scale and each match carries its ``normalized_score``."""

    @property
    def known(self) -> bool:
        return self.name not in (UNKNOWN, SPOOF, LIVENESS_UNSURE)

    @property
    def decision(self) -> str:
        """``"known"``, ``"unknown"``, ``"spoof"`` or ``"liveness-unsure"``."""
        if self.name in (SPOOF, LIVENESS_UNSURE):
            return self.name
        return "known" if self.known else UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "known": self.known,
            "decision": self.decision,
            "liveness": None if self.liveness is None else self.liveness.to_dict(),
            "threshold": round(self.threshold, 6),
            "fmr": self.fmr,
            "detection": self.detection.to_dict(),
            "matches": [m.to_dict() for m in self.matches],
            "probabilities": [{"name": n, "probability": round(p, 6)} for n, p in self.probabilities],
            "fpir": self.fpir,
            "gallery_size": self.gallery_size,
            **({} if self.score_norm is None else {"score_norm": self.score_norm}),
        }


@dataclass(frozen=True)
class PipelineSpec:
    """A :class:`FacePipeline` by value: rebuild it in another process with :meth:`FacePipeline.from_spec`.

    Hashable and picklable. ``detector`` and ``embedder`` also accept a registered name (or, for the
    embedder, the path of a model trained by ``faceprint train``), taken as a spec without options.

    Parameters
    ----------
    detector : DetectorSpec or str
        Registered detector and its options, e.g. ``DetectorSpec("retinaface", max_side=640)``.
    embedder : EmbedderSpec or str
        Registered embedder or trained model path, and options, e.g. ``EmbedderSpec("sface", flip=True)``.
    min_face_size, fmr, max_pixels, liveness, score_norm
        As in :class:`FacePipeline`. A custom ``passive_checker`` has no spec (the default one is
        rebuilt where the pipeline is).

    Examples
    --------
    >>> spec = PipelineSpec(detector="yunet", embedder=EmbedderSpec("sface", flip=True), fmr="1e-2")
    >>> pipe = FacePipeline.from_spec(spec)  # nothing loads yet
    >>> pipe.spec == spec
    True
    """

    detector: DetectorSpec | str = DetectorSpec("yunet")
    embedder: EmbedderSpec | str = EmbedderSpec("sface")
    min_face_size: float = 16.0
    fmr: str = "1e-3"
    max_pixels: int | None = None
    liveness: str = "off"
    score_norm: str | None = None

    def __post_init__(self) -> None:
        if self.score_norm is not None:
            SCORE_NORMALIZERS.factory(self.score_norm)  # UnknownBackendError listing the valid names
        if isinstance(self.detector, str):
            object.__setattr__(self, "detector", DetectorSpec(self.detector))
        if isinstance(self.embedder, str):
            object.__setattr__(self, "embedder", EmbedderSpec(self.embedder))
        if self.liveness not in ("off", "passive"):
            raise InvalidArgumentError(f"liveness must be 'off' or 'passive', got {self.liveness!r}")

    def build(self) -> FacePipeline:
        """The pipeline (weights load on first use, or at :meth:`FacePipeline.warm_up`)."""
        return FacePipeline.from_spec(self)


def _rebuild_pipeline(spec: PipelineSpec) -> FacePipeline:
    """Unpickling hook of :class:`FacePipeline`."""
    return FacePipeline.from_spec(spec)


@dataclass
class FacePipeline:
    """Detector + embedder with the options that tie them together.

    Parameters
    ----------
    detector, embedder
        Backend objects or registered names (``"yunet"``, ``"retinaface"``; ``"sface"``,
        ``"facenet"``, ``"fusion"``).
    min_face_size
        Ignore faces whose shorter box side is below this many pixels.
    fmr
        Default operating point: the calibrated threshold at this false-match rate
        (``"1e-2"``, ``"1e-3"``, ``"1e-4"``) or ``"best_accuracy"``.
    max_pixels
        Decompression-bomb guard for decoded images (see :func:`faceprint.io.load_image`).
    liveness
        Default presentation-attack check for :meth:`verify`, :meth:`identify` and :meth:`enroll`:
        ``"off"`` or ``"passive"`` (see :data:`LivenessOption`; each call can override it).
    passive_checker
        The single-image PAD model for ``"passive"``; default: the shipped
        :data:`faceprint.liveness.DEFAULT_PASSIVE_CHECKER` (:func:`~faceprint.liveness.get_passive_checker`),
        loaded on first use.
    score_norm
        Opt-in score normalisation for :meth:`compare` / :meth:`verify`: None (default: the raw
        cosine decides), ``"s-norm"`` (AS-norm against a shipped impostor cohort) or ``"fsn"`` (Fair
        Score Normalization), the normaliser shipped for this embedder (:mod:`faceprint.scorenorm`).
        The decision is then the normalised score against the normaliser's own threshold at ``fmr``,
        and the :class:`~faceprint.types.Verification` names it (``score_norm``, ``normalized_score``).
        It narrows the spread of false-match rates between demographic groups at one threshold
        (numbers in ``faceprint/models/MODEL_CARD_scorenorm.md``). :meth:`identify` re-scores its raw
        top-``k`` candidates with it (see there).

    A pipeline of registered backends pickles as its :attr:`spec` (another process rebuilds it and
    loads the weights there, on first use or at :meth:`warm_up`); one with a custom backend or
    ``passive_checker`` raises ``TypeError`` when pickled.

    Examples
    --------
    >>> pipe = FacePipeline(detector="yunet", embedder="sface")  # nothing loads yet
    >>> pipe.embedder.dim
    128
    >>> FacePipeline.from_spec(pipe.spec).spec == pipe.spec
    True
    """

    detector: Detector | str = "yunet"
    embedder: Embedder | str = "sface"
    min_face_size: float = 16.0
    fmr: str = "1e-3"
    max_pixels: int | None = None
    liveness: str = "off"
    passive_checker: Any = None
    score_norm: str | None = None
    _default_passive: bool = field(default=False, init=False, repr=False, compare=False)
    """True when ``passive_checker`` is the shipped model this pipeline built itself."""

    def __post_init__(self) -> None:
        if self.liveness not in ("off", "passive"):
            raise InvalidArgumentError(f"liveness must be 'off' or 'passive', got {self.liveness!r}")
        if isinstance(self.detector, str):
            self.detector = get_detector(self.detector)
        if isinstance(self.embedder, str):
            self.embedder = get_embedder(self.embedder)
        if self.score_norm is not None:
            SCORE_NORMALIZERS.factory(self.score_norm)  # UnknownBackendError listing the valid names
            if self.score_norm not in shipped_score_normalizer_names(self._emb.key):
                have = ", ".join(shipped_score_normalizer_names(self._emb.key)) or "none"
                raise ModelNotFoundError(
                    f"no shipped {self.score_norm!r} score normaliser for model {self._emb.key!r} (shipped for it: "
                    f"{have}); the shipped ones are fitted for the default embedder 'sface'"
                )

    # -- by value -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> FacePipeline:
        """Build the pipeline that ``spec`` describes (in this process; nothing loads yet)."""
        det, emb = spec.detector, spec.embedder
        return cls(
            detector=det.build() if isinstance(det, DetectorSpec) else det,
            embedder=emb.build() if isinstance(emb, EmbedderSpec) else emb,
            min_face_size=spec.min_face_size,
            fmr=spec.fmr,
            max_pixels=spec.max_pixels,
            liveness=spec.liveness,
            score_norm=spec.score_norm,
        )

    @property
    def spec(self) -> PipelineSpec:
        """This pipeline by value (see :class:`PipelineSpec`).

        Raises ``TypeError`` for a detector or embedder that is not a registered backend (or a
        trained model file), or a custom ``passive_checker``.
        """
        det, emb = self._det, self._emb
        if not isinstance(det, SpecifiedDetector):
            raise TypeError(
                f"detector {type(det).__name__} has no DetectorSpec: only registered detectors "
                "(faceprint.detection.DETECTORS) can be rebuilt in another process"
            )
        if self.passive_checker is not None and not self._default_passive:
            raise TypeError("a custom passive_checker has no spec: only the shipped passive model is rebuilt")
        return PipelineSpec(
            detector=det.detector_spec,
            embedder=emb.embedder_spec,
            min_face_size=self.min_face_size,
            fmr=self.fmr,
            max_pixels=self.max_pixels,
            liveness=self.liveness,
            score_norm=self.score_norm,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild_pipeline, (self.spec,)

    def warm_up(self) -> FacePipeline:
        """Load every model this pipeline uses and run each once on a tiny input; returns ``self``.

        For a server start or a worker process, so that the first request does not pay the loading.

        Examples
        --------
        >>> pipe = FacePipeline().warm_up()  # doctest: +SKIP
        """
        blank = np.zeros((64, 64, 3), np.uint8)
        self._det.detect(blank)
        self._emb.warm_up()
        if self.liveness == "passive":
            self._passive()
        return self

    # -- stages -----------------------------------------------------------------------------
    @property
    def _det(self) -> Detector:
        assert not isinstance(self.detector, str)
        return self.detector

    @property
    def _emb(self) -> Embedder:
        assert not isinstance(self.embedder, str)
        return self.embedder

    @property
    def model_key(self) -> str:
        """The embedder's key (``"sface+flip"``): the model name that results and reports carry."""
        return self._emb.key

    def load(self, source: ImageInput) -> Image:
        return load_image(source, max_pixels=self.max_pixels)

    def detect(self, source: ImageInput, *, select: Selection = "all") -> list[Detection]:
        """Faces in ``source`` (highest score first); an empty list when there are none.

        ``select``: ``"all"`` (default), ``"largest"``, ``"central"`` or ``"error"`` (see
        :mod:`faceprint.detection`).
        """
        check_selection(select, where="detect")
        image = self.load(source)
        return select_faces(
            self._det.detect(image), image.shape, select, min_face_size=self.min_face_size, what=describe_source(source)
        )

    def faces(self, source: ImageInput, *, select: Selection = "all") -> list[Face]:
        """Detect and embed every (selected) face; ``select`` as in :meth:`detect`."""
        check_selection(select, where="faces")
        return self._faces(self.load(source), select, describe_source(source))

    def _faces(self, image: Image, select: Selection, what: str = "") -> list[Face]:
        dets = select_faces(
            self._det.detect(image), image.shape, select, min_face_size=self.min_face_size, what=what
        )
        embs = self._emb.embed_faces(image, dets)
        return [Face(detection=d, embedding=e, model=self._emb.fingerprint) for d, e in zip(dets, embs)]

    def face(self, source: ImageInput, *, select: OneFace = LARGEST, on_multiple: OneFace | None = None) -> Face:
        """The one face of ``source``: :class:`NoFaceError` if none.

        ``select`` picks it: ``"largest"`` (default), ``"central"``, or ``"error"`` to raise
        :class:`MultipleFacesError` when there are several (see :mod:`faceprint.detection`).
        ``on_multiple`` is its deprecated alias.
        """
        select = resolve_one_face(select, on_multiple, "face")
        return self._face(source, select)[1]

    def _face(self, source: ImageInput, select: OneFace) -> tuple[Image, Face]:
        image = self.load(source)
        return image, self._one_face(image, describe_source(source), select)

    def _one_face(self, image: Image, what: str, select: OneFace) -> Face:
        """The one face of a loaded image (``select`` already checked); errors name the source as ``what``."""
        dets = select_faces(
            self._det.detect(image), image.shape, select, min_face_size=self.min_face_size, what=what
        )
        if not dets:
            raise NoFaceError(f"{what}: no face found")
        emb = self._emb.embed_faces(image, dets[:1])[0]
        return Face(detection=dets[0], embedding=emb, model=self._emb.fingerprint)

    # -- liveness ---------------------------------------------------------------------------
    def check_liveness(
        self, source: ImageInput, *, select: OneFace = LARGEST, on_multiple: OneFace | None = None
    ) -> Liveness:
        """Passive presentation-attack check of the selected (default: largest) face of ``source``.

        Raises :class:`NoFaceError` when there is no face. ``select`` as in :meth:`face`;
        ``on_multiple`` is its deprecated alias.

        Examples
        --------
        >>> FacePipeline().check_liveness("selfie.jpg").verdict  # doctest: +SKIP
        'live'
        """
        select = resolve_one_face(select, on_multiple, "check_liveness")
        image, face = self._face(source, select)
        return self._passive().score(image, face.detection)

    def embed_detections(self, image: Image, detections: Sequence[Detection]) -> npt.NDArray[np.float32]:
        """Unit embeddings (one row per detection) of faces already found in a loaded RGB ``image``
        (a video frame): align and embed, no detection."""
        if not detections:
            return np.zeros((0, self._emb.dim), np.float32)
        return np.asarray(self._emb.embed_faces(image, list(detections)), dtype=np.float32)

    def liveness_of(self, image: Image, detection: Detection) -> Liveness:
        """Passive presentation-attack check of one face already found in a loaded RGB ``image``."""
        result: Liveness = self._passive().score(image, detection)
        return result

    def _passive(self) -> Any:
        if self.passive_checker is None:
            from .liveness import get_passive_checker

            self.passive_checker = get_passive_checker(detector=self._det)
            self._default_passive = True
        return self.passive_checker

    def _liveness(self, option: LivenessOption, image: Image, detection: Detection) -> Liveness | None:
        """Resolve a ``liveness=`` option for one face; None when the check is off."""
        if option is None:
            option = self.liveness
        if isinstance(option, str):
            if option == "off":
                return None
            if option == "passive":
                result: Liveness = self._passive().score(image, detection)
                return result
            raise InvalidArgumentError(
                f"liveness must be 'off', 'passive', a Liveness or a challenge result, got {option!r}"
            )
        if isinstance(option, Liveness):
            return option
        inner = getattr(option, "liveness", None)
        if isinstance(inner, Liveness):
            return inner
        raise InvalidArgumentError(
            f"liveness must be 'off', 'passive', a Liveness or a challenge result, got {type(option).__name__}"
        )

    def embed(
        self, source: ImageInput, *, select: OneFace = LARGEST, on_multiple: OneFace | None = None
    ) -> npt.NDArray[np.float32]:
        """The unit embedding of the one face of ``source``; ``select`` as in :meth:`face`
        (default ``"largest"``), ``on_multiple`` its deprecated alias."""
        select = resolve_one_face(select, on_multiple, "embed")
        return self._face(source, select)[1].embedding

    def embed_many(
        self,
        sources: Sequence[ImageInput],
        *,
        select: OneFace = "largest",
        progress: Callable[[int], None] | None = None,
    ) -> tuple[npt.NDArray[np.float32], list[str | None]]:
        """Embed one face per source for evaluation-style batch work.

        ``select`` as in :meth:`face`: ``"largest"`` (default), ``"central"`` (the choice for
        LFW-style crops, which the evaluations pass) or ``"error"`` (a source with several faces
        fails). Returns ``(embeddings, errors)``: a row of NaN and an error message for each source
        that failed (unreadable image, no face: a failure to acquire), never an exception.
        """
        check_selection(select, one_face=True, where="embed_many")
        out = np.full((len(sources), self._emb.dim), np.nan, np.float32)
        errors: list[str | None] = [None] * len(sources)
        for i, src in enumerate(sources):
            try:
                image = self.load(src)
                dets = select_faces(
                    self._det.detect(image),
                    image.shape,
                    select,
                    min_face_size=self.min_face_size,
                    what=describe_source(src),
                )
                if not dets:
                    raise NoFaceError(f"{describe_source(src)}: no face found")
                out[i] = self._emb.embed_faces(image, dets[:1])[0]
            except FaceprintError as err:
                errors[i] = str(err)
            if progress is not None:
                progress(1)
        return out, errors

    # -- decisions --------------------------------------------------------------------------
    def threshold(self, fmr: str | None = None) -> float:
        """The embedder's calibrated similarity threshold at ``fmr`` (default: the pipeline's)."""
        fmr = fmr or self.fmr
        table = self._emb.thresholds
        if fmr not in table:
            valid = ", ".join(sorted(table)) or (
                "none: the model is not calibrated (run: python bench/lfw.py --write-calibration)"
            )
            raise FaceprintError(
                f"no calibrated threshold for model {self._emb.key!r} "
                f"at fmr={fmr!r}; available: {valid}"
            )
        return float(table[fmr])

    @property
    def score_normalizer(self) -> ScoreNormalizer | None:
        """The shipped normaliser of ``score_norm`` for this embedder (loaded and sha256-checked once), or None."""
        if self.score_norm is None:
            return None
        return get_score_normalizer(self.score_norm, self._emb.key)

    def decision_threshold(self, fmr: str | None = None) -> float:
        """The threshold :meth:`compare` decides with: :meth:`threshold`, or the normaliser's on its scale."""
        norm = self.score_normalizer
        return self.threshold(fmr) if norm is None else norm.threshold(fmr or self.fmr)

    def compare(self, a: npt.ArrayLike, b: npt.ArrayLike, *, fmr: str | None = None) -> Verification:
        """Verify two embeddings from this pipeline's embedder (normalised scores with ``score_norm``)."""
        va, vb = np.asarray(a, np.float32).reshape(-1), np.asarray(b, np.float32).reshape(-1)
        if va.shape != (self._emb.dim,) or vb.shape != (self._emb.dim,):
            raise InvalidArgumentError(f"expected two {self._emb.dim}-d embeddings, got {va.shape} and {vb.shape}")
        sim = float(np.clip(va @ vb, -1.0, 1.0))
        norm = self.score_normalizer
        if norm is not None:
            thr = norm.threshold(fmr or self.fmr)
            score = float(norm.normalize(va, vb, [sim])[0])
            return Verification(
                similarity=sim,
                distance=2.0 - 2.0 * sim,
                same=score >= thr,
                threshold=thr,
                fmr=fmr or self.fmr,
                model=self._emb.fingerprint,
                score_norm=norm.key,
                normalized_score=score,
            )
        thr = self.threshold(fmr)
        return Verification(
            similarity=sim,
            distance=2.0 - 2.0 * sim,
            same=sim >= thr,
            threshold=thr,
            fmr=fmr or self.fmr,
            model=self._emb.fingerprint,
        )

    def verify(
        self,
        a: ImageInput,
        b: ImageInput,
        *,
        select: OneFace = "largest",
        fmr: str | None = None,
        liveness: LivenessOption = None,
    ) -> Verification:
        """1:1: are the selected (default: largest) faces of ``a`` and ``b`` the same person?

        ``a`` is the presented face (the probe), ``b`` the reference. ``select`` picks the face of
        each image as in :meth:`face` (``"error"``: each must show exactly one). With ``liveness``
        (default: the pipeline's) the probe is checked for a presentation attack; a probe that is
        not judged live never verifies: the result has ``same=False`` and ``decision`` ``"spoof"``
        or ``"unsure"``. Raises :class:`NoFaceError` when either image has no face. With the
        pipeline's ``score_norm`` the normalised score decides (see :meth:`compare`).
        """
        check_selection(select, one_face=True, where="verify")
        self.decision_threshold(fmr)  # fail fast on an unknown operating point, before any work
        image_a, face_a = self._face(a, select)
        live = self._liveness(liveness, image_a, face_a.detection)
        result = self.compare(face_a.embedding, self._face(b, select)[1].embedding, fmr=fmr)
        if live is None:
            return result
        return replace(result, liveness=live, same=result.same and live.live)

    def enroll(
        self,
        name: str,
        sources: ImageInput | Sequence[ImageInput],
        gallery: GalleryBackend,
        *,
        select: OneFace = LARGEST,
        metadata: dict[str, Any] | None = None,
        liveness: LivenessOption = None,
        on_multiple: OneFace | None = None,
    ) -> Subject | LivenessRejection:
        """Add one or more photos of ``name`` to ``gallery`` (all or nothing).

        ``select`` picks the face of each photo as in :meth:`face` (default ``"largest"``;
        ``on_multiple`` is its deprecated alias). Every photo is decoded and embedded first; if any
        fails (bad file, no face, several faces with ``select="error"``) nothing is written and the
        error names the file.
        With ``liveness`` (default: the pipeline's) every photo is checked for a presentation
        attack (a given result, e.g. a video challenge, applies to all of them); if any is not
        judged live nothing is written and a :class:`LivenessRejection` is returned.

        A photo whose file bytes the subject already holds (the same sha256, enrolled before in
        any process, or given twice) is stored once; the gallery logs each one it leaves out.
        :func:`faceprint.enrollment.drop_duplicates` says which, before the write.

        The two steps are :func:`faceprint.enrollment.prepare_enrollment` and
        :func:`faceprint.enrollment.commit`.
        """
        from .enrollment import commit, prepare_enrollment

        select = resolve_one_face(select, on_multiple, "enroll")
        prepared = prepare_enrollment(self, name, sources, select=select, liveness=liveness)
        if prepared.rejection is not None:
            return prepared.rejection
        return commit(prepared, gallery, metadata=metadata)

    def enrollment_embeddings(
        self,
        sources: ImageInput | Sequence[ImageInput],
        *,
        select: OneFace = LARGEST,
        on_multiple: OneFace | None = None,
    ) -> tuple[npt.NDArray[np.float32], list[str]]:
        """Embeddings ``(n, dim)`` and source labels of enrollment photos; raises on the first bad photo.

        ``select`` as in :meth:`enroll`; ``on_multiple`` is its deprecated alias.
        """
        select = resolve_one_face(select, on_multiple, "enrollment_embeddings")
        embs, labels, _ = self.prepare_enrollment("", sources, select=select, liveness="off")
        return embs, labels

    def prepare_enrollment(
        self,
        name: str,
        sources: ImageInput | Sequence[ImageInput],
        *,
        select: OneFace = LARGEST,
        liveness: LivenessOption = None,
        on_multiple: OneFace | None = None,
    ) -> tuple[npt.NDArray[np.float32], list[str], LivenessRejection | None]:
        """Everything :meth:`enroll` does before it writes: embeddings, source labels, and the
        :class:`LivenessRejection` when a liveness check did not say live (else None).

        ``select`` as in :meth:`enroll` (default ``"largest"``; ``on_multiple`` is its deprecated
        alias). Raises on the first bad photo (unreadable, no face, several faces with
        ``select="error"``). The same as :func:`faceprint.enrollment.prepare_enrollment`, whose
        frozen result also holds the content hashes and liveness results.
        """
        from .enrollment import prepare_enrollment

        select = resolve_one_face(select, on_multiple, "prepare_enrollment")
        prepared = prepare_enrollment(self, name, sources, select=select, liveness=liveness)
        return np.array(prepared.embeddings), list(prepared.sources), prepared.rejection

    def identify(
        self,
        source: ImageInput,
        gallery: GalleryBackend,
        *,
        k: int = 5,
        fmr: str | None = None,
        select: Selection = "all",
        classifier: Any = None,
        liveness: LivenessOption = None,
        fpir: float | None = None,
    ) -> list[Identification]:
        """1:N: for each face of ``source``, the top-``k`` subjects and the open-set decision.

        ``select`` (see :mod:`faceprint.detection`): ``"all"`` faces (default), ``"largest"``,
        ``"central"``, or ``"error"`` (the one face; :class:`MultipleFacesError` when several).
        With ``liveness`` (default: the pipeline's) each face is checked for a presentation attack
        first; a face not judged live gets the name :data:`SPOOF` or :data:`LIVENESS_UNSURE`, no
        matches, and is never searched in the gallery. A result given by the caller (a
        :class:`~faceprint.types.Liveness` or a challenge result) vouches for one presented face, so
        with several faces selected it raises :class:`~faceprint.errors.MultipleFacesError` rather
        than lending one person's liveness to the others.

        Without ``classifier`` the best candidate is the subject with the most similar template.
        With a fitted classifier from :mod:`faceprint.classification` (e.g.
        ``from_gallery(gallery, classifier=SVMFaceClassifier())``) the classifier picks the
        candidate and gives probabilities; the open-set decision stays the calibrated verification
        threshold on that candidate's best template similarity, so "unknown" keeps its FMR meaning.

        With ``fpir`` (e.g. ``1e-2``) the open-set threshold is set for the gallery's current size
        instead: at most about that fraction of searches by people not in the gallery return a name
        (:func:`faceprint.thresholds.threshold_for_fpir` with ``gallery.n_templates``, from the
        model's impostor tail). The results carry ``fpir``, ``gallery_size`` and the per-comparison
        ``fmr`` it implies. ``fmr`` and ``fpir`` together raise
        :class:`~faceprint.errors.InvalidArgumentError`; an ``fpir`` the tail cannot support at this
        size raises :class:`~faceprint.errors.UnsupportedOperatingPointError`.

        With the pipeline's ``score_norm`` the raw top-``k`` subjects are re-scored by the normaliser
        (a subject's score: the best over its templates), re-ranked, and the best is named when its
        normalised score reaches the normaliser's threshold at ``fmr``; the matches carry
        ``normalized_score`` and the results ``score_norm``. Only the top ``k`` are normalised, so a
        subject outside the raw top ``k`` is never considered. It does not combine with ``fpir`` or a
        ``classifier`` (:class:`~faceprint.errors.InvalidArgumentError`).
        """
        if k < 1:
            raise InvalidArgumentError(f"k must be >= 1, got {k}")
        check_selection(select, where="identify")
        point = self._open_set_point(gallery, fmr=fmr, fpir=fpir, classifier=classifier)
        image = self.load(source)
        faces = list(self._faces(image, select, describe_source(source)))
        if len(faces) > 1 and liveness is not None and not isinstance(liveness, str):
            raise MultipleFacesError(
                f"a given liveness result vouches for one presented face, but the image has {len(faces)} faces: "
                "select one (select='largest' / 'central'; CLI: --select largest), or check each face with "
                "liveness='passive'"
            )
        return [
            self._decide(
                point,
                face.embedding,
                face.detection,
                self._liveness(liveness, image, face.detection),
                gallery,
                k=k,
                classifier=classifier,
            )
            for face in faces
        ]

    def identify_embedding(
        self,
        embedding: npt.ArrayLike,
        gallery: GalleryBackend,
        *,
        detection: Detection,
        k: int = 5,
        fmr: str | None = None,
        classifier: Any = None,
        liveness: Liveness | None = None,
        fpir: float | None = None,
    ) -> Identification:
        """1:N decision for an embedding this pipeline made (e.g. the mean of a video track's best
        frames, re-normalised), with the same thresholds, ``fpir``, ``classifier`` and score
        normalisation as :meth:`identify`; ``detection`` is the face the result reports.

        A ``liveness`` result that is not live gives :data:`SPOOF` / :data:`LIVENESS_UNSURE` without a
        search, as in :meth:`identify`.

        Raises
        ------
        InvalidArgumentError
            ``embedding`` is not one finite vector of the embedder's dimension.
        """
        if k < 1:
            raise InvalidArgumentError(f"k must be >= 1, got {k}")
        probe = np.asarray(embedding, dtype=np.float32)
        if probe.shape != (self._emb.dim,) or not np.all(np.isfinite(probe)):
            raise InvalidArgumentError(
                f"embedding must be a finite vector of {self._emb.dim} values, got shape {probe.shape}"
            )
        norm = float(np.linalg.norm(probe))
        if norm == 0.0:
            raise InvalidArgumentError("embedding must not be all zeros")
        point = self._open_set_point(gallery, fmr=fmr, fpir=fpir, classifier=classifier)
        return self._decide(point, probe / norm, detection, liveness, gallery, k=k, classifier=classifier)

    def _open_set_point(
        self, gallery: GalleryBackend, *, fmr: str | None, fpir: float | None, classifier: Any
    ) -> _OpenSetPoint:
        """The thresholds one identification decides at (see :meth:`identify`)."""
        gallery_size: int | None = None
        if fpir is None:
            thr = self.threshold(fmr)
            fmr_name = fmr or self.fmr
        else:
            if fmr is not None:
                raise InvalidArgumentError(
                    f"give fmr (a 1:1 operating point) or fpir (an open-set rate), not both: fmr={fmr!r}, fpir={fpir!r}"
                )
            from .thresholds import fmr_for_fpir, threshold_for_fpir

            gallery_size = int(gallery.n_templates)
            n = max(gallery_size, 1)  # an empty gallery names no one at any threshold
            thr = threshold_for_fpir(self.model_key, fpir, n, fingerprint=self._emb.fingerprint)
            fmr_name = f"{fmr_for_fpir(fpir, n):.3g}"
        fpir_name = None if fpir is None else f"{float(fpir):g}"
        fp = self._emb.fingerprint
        norm = self.score_normalizer
        norm_thr = thr  # the threshold results report: on the normalised scale with score_norm
        if norm is not None:
            if fpir is not None or classifier is not None:
                raise InvalidArgumentError(
                    "score_norm decides 1:1 and top-k identification at an FMR; it does not combine with "
                    f"fpir= or a classifier (score_norm={self.score_norm!r})"
                )
            norm_thr = norm.threshold(fmr_name)
        if classifier is not None and getattr(classifier, "fingerprint_", fp) not in (None, fp):
            raise EmbedderMismatchError(
                f"classifier was trained on {classifier.fingerprint_!r} embeddings, this pipeline makes {fp!r}"
            )
        return _OpenSetPoint(thr, norm_thr, fmr_name, fpir_name, gallery_size)

    def _decide(
        self,
        point: _OpenSetPoint,
        embedding: npt.NDArray[np.float32],
        detection: Detection,
        live: Liveness | None,
        gallery: GalleryBackend,
        *,
        k: int,
        classifier: Any,
    ) -> Identification:
        """The open-set decision for one unit embedding at ``point``."""
        thr, norm_thr = point.threshold, point.decision_threshold
        fp, norm = self._emb.fingerprint, self.score_normalizer
        if live is not None and not live.live:
            return Identification(
                detection=detection,
                matches=(),
                name=SPOOF if live.verdict == "spoof" else LIVENESS_UNSURE,
                threshold=norm_thr,
                fmr=point.fmr,
                liveness=live,
                fpir=point.fpir,
                gallery_size=point.gallery_size,
            )
        probs: tuple[tuple[str, float], ...] = ()
        if norm is not None:
            matches = _normalised_matches(
                norm, norm_thr, embedding, gallery.search(embedding, k=k, threshold=thr, fingerprint=fp), gallery
            )
            name = matches[0].name if matches and matches[0].same else UNKNOWN
        elif classifier is None:
            matches = gallery.search(embedding, k=k, threshold=thr, fingerprint=fp)
            name = matches[0].name if matches and matches[0].same else UNKNOWN
        else:
            # The k best subjects by template, then the classifier's candidates outside them
            # scored from their own templates: the matches a search of the whole gallery gives.
            nearest = gallery.search(embedding, k=k, threshold=thr, fingerprint=fp)
            proba = np.asarray(classifier.predict_proba(embedding[None]))[0]
            order = np.argsort(-proba)
            classes = [str(c) for c in classifier.classes_]
            probs = tuple((classes[i], float(proba[i])) for i in order[:k])
            by_name = {m.name: m for m in nearest}
            others = [c for c, _ in probs if c not in by_name]
            if others:
                scored = gallery.score(embedding, others, threshold=thr, fingerprint=fp)
                by_name.update((m.name, m) for m in scored if m.name in others)
            best = by_name.get(classes[order[0]]) if len(order) else None
            name = best.name if best is not None and best.same else UNKNOWN
            matches = [by_name[c] for c, _ in probs if c in by_name]
        return Identification(
            detection=detection,
            matches=tuple(matches),
            name=name,
            threshold=norm_thr,
            fmr=point.fmr,
            probabilities=probs,
            liveness=live,
            fpir=point.fpir,
            gallery_size=point.gallery_size,
            score_norm=None if norm is None else norm.key,
        )


@dataclass(frozen=True)
class _OpenSetPoint:
    """The thresholds of one identification call: raw ``threshold`` for the search, ``decision_threshold``
    (on the normalised scale with score normalisation) and the rates they name."""

    threshold: float
    decision_threshold: float
    fmr: str
    fpir: str | None
    gallery_size: int | None


def _normalised_matches(
    norm: ScoreNormalizer, threshold: float, probe: npt.NDArray[np.float32], raw: list[Match], gallery: GalleryBackend
) -> list[Match]:
    """The raw top-k candidates re-scored by ``norm`` (a subject's score: the best over its templates), best first."""
    if not raw:
        return []
    batch = gallery.templates_many([m.subject_id if m.subject_id is not None else m.name for m in raw], missing_ok=True)
    if len(batch) == 0:
        return []
    sims = np.clip(batch.embeddings.astype(np.float64) @ probe.astype(np.float64), -1.0, 1.0)
    scores = norm.combine(sims, norm.side_stats(probe[None])[0], norm.side_stats(batch.embeddings))
    out = []
    for m in raw:
        rows = np.flatnonzero(batch.subject_ids == m.subject_id) if m.subject_id is not None else np.flatnonzero(
            np.array(batch.names) == m.name
        )
        if rows.size == 0:
            continue
        best = rows[int(np.argmax(scores[rows]))]
        score = float(scores[best])
        out.append(replace(m, same=score >= threshold, threshold=threshold, normalized_score=score))
    out.sort(key=lambda x: -(x.normalized_score or 0.0))
    return out


@lazy_singleton
def default_pipeline() -> FacePipeline:
    """The shared pipeline behind the plain functions (YuNet + SFace), built on first use."""
    return FacePipeline()


def detect(source: ImageInput, *, select: Selection = "all") -> list[Detection]:
    """Detect faces with the default pipeline; ``select`` as in :meth:`FacePipeline.detect` (default ``"all"``).

    Examples
    --------
    >>> import numpy as np
    >>> detect(np.zeros((64, 64, 3), np.uint8))
    []
    """
    return default_pipeline().detect(source, select=select)


def embed(source: ImageInput, *, select: OneFace = "largest") -> npt.NDArray[np.float32]:
    """Unit embedding of the selected (default: largest) face in ``source`` (default pipeline).

    ``select``: ``"largest"``, ``"central"`` or ``"error"`` (see :mod:`faceprint.detection`).
    """
    return default_pipeline().embed(source, select=select)


def verify(
    a: ImageInput,
    b: ImageInput,
    *,
    select: OneFace = "largest",
    fmr: str | None = None,
    liveness: LivenessOption = "off",
) -> Verification:
    """1:1 verification with the default pipeline at its calibrated threshold.

    ``select`` picks the face of each image (default ``"largest"``; see :meth:`FacePipeline.verify`).
    ``liveness="passive"`` checks the probe ``a`` for a presentation attack first.
    """
    return default_pipeline().verify(a, b, select=select, fmr=fmr, liveness=liveness)


def enroll(
    name: str,
    sources: ImageInput | Sequence[ImageInput],
    gallery: GalleryBackend,
    *,
    select: OneFace = "largest",
    liveness: LivenessOption = "off",
) -> Subject | LivenessRejection:
    """Enroll ``name`` from one photo or a list of photos into ``gallery`` (default pipeline).

    ``select`` picks the face of each photo (default ``"largest"``; ``"error"`` refuses a photo of
    several faces).
    """
    return default_pipeline().enroll(name, sources, gallery, select=select, liveness=liveness)


def identify(
    source: ImageInput,
    gallery: GalleryBackend,
    *,
    k: int = 5,
    select: Selection = "all",
    liveness: LivenessOption = "off",
    fpir: float | None = None,
) -> list[Identification]:
    """1:N identification of the selected faces (default: every face) in ``source`` against ``gallery``
    (default pipeline); ``select`` as in :meth:`FacePipeline.identify`.

    ``fpir=1e-2`` sets the open-set threshold for the gallery's current size (see
    :meth:`FacePipeline.identify`); without it the 1:1 threshold at the pipeline's FMR decides.
    """
    return default_pipeline().identify(source, gallery, k=k, select=select, liveness=liveness, fpir=fpir)


