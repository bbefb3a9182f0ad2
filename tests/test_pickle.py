"""Pickling by spec: FacePipeline, detectors, embedders and prepared enrollments in another process.

The fast tests check the specs and round trips without loading a model. The ``real`` / ``data``
tests send loaded objects to one ``spawn`` worker process (a fresh interpreter, as on Ray or a
process pool), run them there on LFW photos and compare with the same objects in this process.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceprint import runtime
from faceprint.detection import DETECTORS, Detector, DetectorSpec, RetinaFaceDetector, YuNetDetector, get_detector
from faceprint.embedding import Embedder, EmbedderSpec, FusionEmbedder, SFaceEmbedder, get_embedder
from faceprint.enrollment import PreparedEnrollment, commit, prepare_enrollment
from faceprint.gallery import Gallery
from faceprint.pipeline import FacePipeline, PipelineSpec
from faceprint.types import Detection
from fakes import FakeDetector, FakeEmbedder

LfwImage = Callable[[str, int], Path]
TOL = {"rtol": 1e-5, "atol": 1e-5}


# -- specs and round trips without loading anything ---------------------------------------------
def test_detector_specs_and_round_trips() -> None:
    assert get_detector("yunet").detector_spec == DetectorSpec("yunet")  # defaults are left out
    retina = get_detector("retinaface", max_side=640, score_threshold=0.9)
    assert retina.detector_spec == DetectorSpec("retinaface", score_threshold=0.9, max_side=640)
    for det in (get_detector("yunet", nms_threshold=0.5), retina):
        data = pickle.dumps(det)
        assert len(data) < 1000  # a spec, not weights or a session
        back = pickle.loads(data)
        assert type(back) is type(det) and back is not det
        assert back.detector_spec == det.detector_spec
        assert vars(back).keys() == vars(det).keys()
    assert DetectorSpec("yunet", max_side=640).build().max_side == 640  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="yunet"):
        DetectorSpec("no-such-detector").build()


def test_embedder_specs_and_round_trips() -> None:
    cases: list[tuple[Embedder, EmbedderSpec]] = [
        (get_embedder("sface"), EmbedderSpec("sface")),
        (get_embedder("sface", flip=True), EmbedderSpec("sface", flip=True)),
        (get_embedder("facenet"), EmbedderSpec("facenet")),
        (get_embedder("fusion"), EmbedderSpec("fusion", members=(EmbedderSpec("sface"), EmbedderSpec("facenet")),
                                              weights=None)),
        (
            FusionEmbedder([get_embedder("sface", flip=True), "facenet"], weights=[3.0, 1.0]),
            EmbedderSpec("fusion", members=[EmbedderSpec("sface", flip=True), EmbedderSpec("facenet")],
                         weights=(3.0, 1.0)),
        ),
    ]
    for emb, spec in cases:
        assert emb.embedder_spec == spec and hash(emb.embedder_spec) == hash(spec)
        for back in (pickle.loads(pickle.dumps(emb)), spec.build()):
            assert type(back) is type(emb) and back is not emb
            assert (back.key, back.fingerprint, back.dim, dict(back.thresholds)) == (
                emb.key, emb.fingerprint, emb.dim, dict(emb.thresholds)
            )
            assert back.embedder_spec == spec
    fused = cases[-1][0]
    assert isinstance(fused, FusionEmbedder) and fused.weights == (0.75, 0.25)
    assert pickle.loads(pickle.dumps(fused)).weights == (0.75, 0.25)


def test_embedder_protocol_is_complete() -> None:
    for name in ("sface", "facenet", "fusion"):
        emb = get_embedder(name)
        assert isinstance(emb, Embedder)
        assert emb.spec.name == emb.key and emb.spec.dim == emb.dim
        assert emb.spec.thresholds == emb.thresholds
    sface, fusion = get_embedder("sface", flip=True), get_embedder("fusion")
    assert sface.key == "sface+flip" and sface.input_size == (112, 112) and sface.template is not None
    assert fusion.input_size is None and fusion.template is None
    assert fusion.spec.notes.startswith("score fusion of sface (weight") and "facenet" in fusion.spec.package


def test_pipeline_spec() -> None:
    spec = PipelineSpec(detector="retinaface", embedder=EmbedderSpec("sface", flip=True), min_face_size=30.0,
                        fmr="1e-2", max_pixels=10_000_000, liveness="passive")
    assert spec.detector == DetectorSpec("retinaface") and spec.embedder == EmbedderSpec("sface", flip=True)
    assert hash(spec) == hash(PipelineSpec(**vars(spec)))
    pipe = FacePipeline.from_spec(spec)
    assert isinstance(pipe.detector, RetinaFaceDetector) and isinstance(pipe.embedder, SFaceEmbedder)
    assert (pipe.min_face_size, pipe.fmr, pipe.max_pixels, pipe.liveness) == (30.0, "1e-2", 10_000_000, "passive")
    assert pipe.spec == spec and spec.build().spec == spec
    assert FacePipeline().spec == PipelineSpec()
    assert FacePipeline(embedder="fusion").spec.embedder == get_embedder("fusion").embedder_spec
    with pytest.raises(ValueError, match="liveness"):
        PipelineSpec(liveness="maybe")


def test_pipeline_pickles_as_its_spec() -> None:
    pipe = FacePipeline(detector=get_detector("yunet", max_side=800), embedder="facenet", fmr="1e-2")
    data = pickle.dumps(pipe)
    assert len(data) < 2000
    back = pickle.loads(data)
    assert back.spec == pipe.spec and back is not pipe
    assert back.detector is not pipe.detector and back.embedder is not pipe.embedder


def test_pipelines_without_a_spec_refuse_to_pickle() -> None:
    with pytest.raises(TypeError, match="DetectorSpec"):
        pickle.dumps(FacePipeline(detector=FakeDetector(), embedder="sface"))
    with pytest.raises(TypeError, match="EmbedderSpec"):
        pickle.dumps(FacePipeline(detector="yunet", embedder=FakeEmbedder()))
    with pytest.raises(TypeError, match="passive_checker"):
        _ = FacePipeline(passive_checker=object()).spec


def test_warm_up_runs_each_stage_once_on_fakes() -> None:
    det = FakeDetector()
    pipe = FacePipeline(detector=det, embedder=FakeEmbedder())
    assert pipe.warm_up() is pipe
    assert det.calls == 1


def test_lazy_singleton_builds_once_under_threads() -> None:
    built: list[object] = []
    gate = threading.Barrier(4)

    @runtime.lazy_singleton
    def shared() -> object:
        built.append(object())
        return built[-1]

    assert not shared.built and shared.__doc__ is None and shared.__name__ == "shared"
    results: list[object] = []

    def call() -> None:
        gate.wait()
        results.append(shared())

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and all(r is built[0] for r in results) and shared.built
    shared.reset()
    assert shared() is built[1]


def test_lazy_singleton_retries_after_a_failed_build() -> None:
    attempts: list[int] = []

    @runtime.lazy_singleton
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first build fails")
        return 7

    with pytest.raises(RuntimeError):
        flaky()
    assert not flaky.built
    assert flaky() == 7 and flaky() == 7 and len(attempts) == 2


# -- in a spawned worker process, on LFW ----------------------------------------------------------
def _init_worker() -> None:
    runtime.set_num_threads(2)


def _loaded(obj: Any) -> bool:
    """Whether a backend's model is in memory (the unpickled copy must arrive without it)."""
    if isinstance(obj, FusionEmbedder):
        return any(_loaded(m) for m in obj.members)
    return any(getattr(obj, a, None) is not None for a in ("_model", "_session", "_net"))


def _detect_in_worker(detector: Detector, paths: list[Path]) -> tuple[bool, list[list[Detection]]]:
    from faceprint.io import load_image

    arrived_loaded = _loaded(detector)
    return arrived_loaded, [detector.detect(load_image(p)) for p in paths]


def _embed_in_worker(
    embedders: list[Embedder], jobs: list[tuple[Path, Detection]]
) -> list[tuple[bool, str, np.ndarray]]:
    from faceprint.io import load_image

    arrived_loaded = [_loaded(e) for e in embedders]
    images = [(load_image(p), d) for p, d in jobs]
    return [
        (loaded, e.fingerprint, np.concatenate([e.embed_faces(img, [d]) for img, d in images]))
        for loaded, e in zip(arrived_loaded, embedders)
    ]


def _pipeline_in_worker(pipe: FacePipeline, paths: list[Path]) -> tuple[PipelineSpec, np.ndarray, list[Detection]]:
    pipe.warm_up()
    return pipe.spec, np.stack([pipe.embed(p) for p in paths]), pipe.detect(paths[0])


def _prepare_in_worker(pipe: FacePipeline, name: str, paths: list[Path]) -> PreparedEnrollment:
    return prepare_enrollment(pipe, name, paths)


def _commit_in_worker(prepared: PreparedEnrollment, gallery: Path) -> tuple[str, int]:
    with Gallery(gallery) as g:
        subject = commit(prepared, g, metadata={"by": "worker"})
    return subject.name, subject.n_templates


@pytest.fixture(scope="module")
def worker() -> Iterator[Any]:
    """One spawned worker process for every test below (spawn: nothing is inherited but pickles)."""
    with multiprocessing.get_context("spawn").Pool(1, initializer=_init_worker) as pool:
        yield pool


@pytest.fixture(scope="module")
def photos(request: pytest.FixtureRequest) -> list[Path]:
    lfw_image: LfwImage = request.getfixturevalue("lfw_image")
    return [lfw_image("George_W_Bush", 1), lfw_image("Colin_Powell", 1)]


def _same_detections(a: list[Detection], b: list[Detection]) -> None:
    assert len(a) == len(b) >= 1
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.box, y.box, **TOL)
        np.testing.assert_allclose(x.landmarks, y.landmarks, **TOL)
        assert x.score == pytest.approx(y.score, abs=1e-6)


def _faces(yunet: Detector, photos: list[Path]) -> list[tuple[Path, Detection]]:
    from faceprint.io import load_image

    return [(p, max(yunet.detect(load_image(p)), key=lambda d: d.area)) for p in photos]


@pytest.mark.real
@pytest.mark.data
def test_detectors_in_a_worker(worker: Any, yunet: Detector, retinaface: Detector, photos: list[Path]) -> None:
    for det in (yunet, retinaface):
        det.warm_up()  # type: ignore[attr-defined]  # loaded here: the pickle must not carry the model
        assert _loaded(det)
        _, here = _detect_in_worker(det, photos)
        arrived_loaded, there = worker.apply(_detect_in_worker, (det, photos))
        assert arrived_loaded is False
        for a, b in zip(here, there):
            _same_detections(a, b)


@pytest.mark.real
@pytest.mark.data
def test_embedders_in_a_worker(
    worker: Any, yunet: Detector, sface: Embedder, facenet: Embedder, photos: list[Path]
) -> None:
    jobs = _faces(yunet, photos)
    flipped = get_embedder("sface", flip=True)
    # one pickle: the fusion's members are the same objects as the others, so they load once there too
    embedders = [sface, flipped, facenet, FusionEmbedder([flipped, facenet], weights=[0.6, 0.4])]
    here = _embed_in_worker(embedders, jobs)  # loads the models here first
    there = worker.apply(_embed_in_worker, (embedders, jobs))
    for emb, (_, fp, a), (arrived_loaded, fp_there, b) in zip(embedders, here, there, strict=True):
        assert arrived_loaded is False and fp_there == fp == emb.fingerprint
        assert b.shape == (2, emb.dim)
        np.testing.assert_allclose(b, a, **TOL)
        assert float(a[0] @ a[1]) < 0.5  # two different people: real embeddings, not zeros


@pytest.fixture(scope="module")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """An exported two-network ensemble (kind image) and an adaptation head on SFace (kind head)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from faceprint.training.data import default_template
    from faceprint.training.export import export_onnx, write_spec
    from faceprint.training.networks import PREPROCESSING, AdaptationHead, CompactFaceNet, EnsembleNet

    out = tmp_path_factory.mktemp("trained")
    torch.manual_seed(0)
    ensemble = EnsembleNet([CompactFaceNet(dim=32, input_size=48, width=8) for _ in range(2)]).eval()
    image_spec = write_spec(
        export_onnx(ensemble, out / "ensemble" / "model.onnx", input_shape=(3, 48, 48)),
        name="tiny-ensemble", kind="image", dim=64, input_size=48, template=default_template(48),
        preprocessing=PREPROCESSING, thresholds={"1e-3": 0.6},
    )
    head = AdaptationHead(128, 32, hidden=16).eval()
    head_spec = write_spec(
        export_onnx(head, out / "head" / "model.onnx", input_shape=(128,)),
        name="tiny-head", kind="head", dim=32, base="sface", in_dim=128, thresholds={"1e-3": 0.5},
    )
    return [image_spec, head_spec]


@pytest.mark.real
@pytest.mark.data
def test_trained_models_in_a_worker(
    worker: Any, yunet: Detector, photos: list[Path], trained_models: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = _faces(yunet, photos)
    for spec_path in trained_models:
        monkeypatch.chdir(spec_path.parent.parent)  # a relative path here; the pickle carries an absolute one
        emb = get_embedder(str(Path(spec_path.parent.name) / spec_path.name), flip=True)
        assert emb.embedder_spec == EmbedderSpec(str(spec_path.resolve()), flip=True)
        [(_, fp, here)] = _embed_in_worker([emb], jobs)
        [(arrived_loaded, fp_there, there)] = worker.apply(_embed_in_worker, ([emb], jobs))
        assert arrived_loaded is False and fp_there == fp
        np.testing.assert_allclose(there, here, **TOL)


@pytest.mark.real
@pytest.mark.data
def test_pipeline_and_enrollment_in_a_worker(
    worker: Any, yunet: Detector, sface: Embedder, photos: list[Path], tmp_path: Path
) -> None:
    pipe = FacePipeline(detector=yunet, embedder=sface, min_face_size=20.0)
    here = np.stack([pipe.embed(p) for p in photos])
    spec, there, dets = worker.apply(_pipeline_in_worker, (pipe, photos))
    assert spec == pipe.spec
    np.testing.assert_allclose(there, here, **TOL)
    _same_detections(dets, pipe.detect(photos[0]))

    # prepared in the worker, committed here; prepared here, committed there
    prepared_there: PreparedEnrollment = worker.apply(_prepare_in_worker, (pipe, "George W Bush", photos[:1]))
    prepared_here = prepare_enrollment(pipe, "George W Bush", photos[:1])
    np.testing.assert_allclose(prepared_there.embeddings, prepared_here.embeddings, **TOL)
    assert prepared_there.content_sha256 == prepared_here.content_sha256
    assert (prepared_there.sources, prepared_there.fingerprint) == (prepared_here.sources, prepared_here.fingerprint)
    with Gallery(tmp_path / "here.db") as g:
        assert commit(prepared_there, g).n_templates == 1
        np.testing.assert_allclose(g.templates("George W Bush"), prepared_here.embeddings, **TOL)

    both = prepare_enrollment(pipe, "Colin Powell", photos[::-1])
    assert worker.apply(_commit_in_worker, (both, tmp_path / "there.db")) == ("Colin Powell", 2)
    with Gallery(tmp_path / "there.db") as g:
        np.testing.assert_array_equal(g.templates("Colin Powell"), both.embeddings)
        assert g.get("Colin Powell").metadata == {"by": "worker"}


def test_registered_detectors_are_all_covered() -> None:
    """A new registered detector must be added to the round-trip tests above."""
    assert DETECTORS.names() == ["retinaface", "yunet"]
    assert {YuNetDetector, RetinaFaceDetector} == {DETECTORS.factory(n) for n in DETECTORS.names()}
