"""The error hierarchy and the public names: every user-input error is a FaceprintError."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import faceprint
import faceprint.errors as errors
from faceprint.errors import (
    FaceprintError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidFileError,
    NotAFolderError,
    UnknownBackendError,
)

SRC = Path(faceprint.__file__).parent


# -- public names ---------------------------------------------------------------------------


def test_every_name_in_all_resolves() -> None:
    missing = [name for name in faceprint.__all__ if not hasattr(faceprint, name)]
    assert missing == []
    assert len(faceprint.__all__) == len(set(faceprint.__all__)), "a name is listed twice"


def test_all_is_the_complete_map_of_public_names() -> None:
    public = {
        name
        for name, value in vars(faceprint).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and type(value).__module__ != "__future__"  # `from __future__ import annotations`
    }
    assert public == set(faceprint.__all__) - {"__version__"}


def test_every_error_class_is_exported_from_faceprint() -> None:
    for name in errors.__all__:
        assert name in faceprint.__all__, name
        assert getattr(faceprint, name) is getattr(errors, name)


def test_errors_all_lists_every_error_class_and_each_is_a_faceprint_error() -> None:
    defined = {
        name for name, value in vars(errors).items() if inspect.isclass(value) and value.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), FaceprintError), name


def test_subject_and_liveness_rejection_are_the_library_classes() -> None:
    from faceprint.gallery import Subject
    from faceprint.pipeline import LivenessRejection

    assert faceprint.Subject is Subject
    assert faceprint.LivenessRejection is LivenessRejection


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (InvalidArgumentError, ValueError),
        (InvalidArgumentTypeError, TypeError),
        (InvalidArgumentTypeError, ValueError),
        (UnknownBackendError, ValueError),
        (InvalidFileError, ValueError),
        (NotAFolderError, NotADirectoryError),
    ],
)
def test_new_errors_are_also_the_builtin_callers_caught_before(cls: type[Exception], builtin: type) -> None:
    assert issubclass(cls, FaceprintError)
    assert issubclass(cls, builtin)


# -- the offenders of issue 13 and a sample of the rest ---------------------------------------


def _unknown_embedder() -> None:
    faceprint.get_embedder("no-such-model")


def _unknown_detector() -> None:
    faceprint.get_detector("no-such-detector")


def _unknown_select() -> None:
    from faceprint.detection import select_faces

    select_faces([], (100, 100, 3), "biggest")  # type: ignore[arg-type]


def _unknown_liveness() -> None:
    faceprint.FacePipeline(detector=object(), embedder=object(), liveness="active")  # type: ignore[arg-type]


def _unknown_index(tmp: Path) -> None:
    faceprint.Gallery(tmp / "g.db", index="no-such-index")


def _unknown_preset() -> None:
    from faceprint.processing import Augmenter

    Augmenter.preset("no-such-preset")


def _unknown_clustering_method() -> None:
    from faceprint.clustering import cluster_embeddings

    cluster_embeddings(np.eye(3, dtype=np.float32), method="kmeans", threshold=0.5)  # type: ignore[arg-type]


def _bad_threads() -> None:
    faceprint.set_num_threads(0)


def _bad_challenge() -> None:
    from faceprint.liveness import Challenge

    Challenge.parse("blink,moonwalk")


@pytest.mark.parametrize(
    ("call", "expected", "words"),
    [
        (_unknown_embedder, UnknownBackendError, ("no-such-model", "sface", "facenet")),
        (_unknown_detector, UnknownBackendError, ("no-such-detector", "yunet", "retinaface")),
        (_unknown_select, InvalidArgumentError, ("biggest", "largest", "central")),
        (_unknown_liveness, InvalidArgumentError, ("'active'", "off", "passive")),
        (_unknown_preset, UnknownBackendError, ("no-such-preset", "mixed")),
        (_unknown_clustering_method, UnknownBackendError, ("kmeans", "agglomerative")),
        (_bad_threads, InvalidArgumentError, ("threads", "0")),
        (_bad_challenge, InvalidArgumentError, ("moonwalk",)),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_user_input_errors_are_faceprint_errors_and_value_errors(
    call: Callable[[], None], expected: type[FaceprintError], words: tuple[str, ...]
) -> None:
    with pytest.raises(expected) as info:
        call()
    assert isinstance(info.value, FaceprintError)
    assert isinstance(info.value, ValueError)  # callers catching the builtin keep working
    for word in words:
        assert word in str(info.value)


def test_unknown_gallery_index_is_an_unknown_backend_error(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackendError, match="no-such-index"):
        _unknown_index(tmp_path)


def test_wrong_subject_key_type_is_a_type_error_and_a_faceprint_error(tmp_path: Path) -> None:
    gallery = faceprint.Gallery(tmp_path / "g.db")
    with pytest.raises(InvalidArgumentTypeError, match="subject name"):
        gallery.get(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gallery.get(1.5)  # type: ignore[arg-type]


def test_malformed_pair_list_is_an_invalid_file_error(tmp_path: Path) -> None:
    from faceprint.evaluation import read_lfw_pairs

    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\nAlice 1\n")
    with pytest.raises(InvalidFileError, match=r"pairs\.txt:2"):
        read_lfw_pairs(pairs, tmp_path)


def test_a_file_that_is_not_a_classifier_is_an_invalid_file_error(tmp_path: Path) -> None:
    from faceprint.classification import load_classifier

    path = tmp_path / "model.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(InvalidFileError, match="not a faceprint classifier file"):
        load_classifier(path)


def test_a_liveness_model_that_is_not_json_is_an_invalid_file_error(tmp_path: Path) -> None:
    from faceprint.liveness import LBPSVMPassiveChecker

    path = tmp_path / "model.json"
    path.write_text("{ not json")
    with pytest.raises(InvalidFileError, match="not a passive LBP model"):
        LBPSVMPassiveChecker.load(path)


def test_clustering_a_missing_folder_is_a_not_a_folder_error(tmp_path: Path) -> None:
    from faceprint.clustering import cluster_directory

    with pytest.raises(NotAFolderError, match="not a directory"):
        cluster_directory(tmp_path / "missing", object(), out_dir=tmp_path / "out")  # type: ignore[arg-type]


# -- the CLI maps FaceprintError (and unreadable files) alone ---------------------------------


def test_cli_maps_faceprint_and_os_errors_to_exit_2_and_lets_bugs_through() -> None:
    from faceprint.cli.common import _errors, _Exit

    for raised in (UnknownBackendError("unknown detector 'x'"), FileNotFoundError("gone.jpg")):
        with pytest.raises(_Exit) as info:
            with _errors():
                raise raised
        assert info.value.code == 2
    for bug in (ValueError("internal"), TypeError("internal"), KeyError("internal")):
        with pytest.raises(type(bug)):
            with _errors():
                raise bug


# -- no builtin raised for user input anywhere in the library ---------------------------------

# Programming errors (internal invariants), not user input: these may stay builtins.
ALLOWED_BUILTIN_RAISES = {
    ("ValueError", "is already registered"),  # a second backend registered under one name
    ("ValueError", "ONNX output shape"),  # export: the ONNX graph disagrees with the PyTorch model
    ("TypeError", "not JSON serialisable"),  # json.dumps default= hook
    ("AttributeError", "has no attribute"),  # module __getattr__
    # pickle's own convention for an object that cannot be pickled (a custom backend has no spec)
    ("TypeError", "has no DetectorSpec"),
    ("TypeError", "has no spec"),
    ("TypeError", "cannot score given ids"),  # a backend asked for a capability its index lacks
}
BUILTINS = {"ValueError", "TypeError", "KeyError", "IndexError", "LookupError", "RuntimeError", "OSError",
            "FileNotFoundError", "NotADirectoryError", "IsADirectoryError", "PermissionError", "AttributeError",
            "Exception"}


def _builtin_raises() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
                continue
            func = node.exc.func
            if isinstance(func, ast.Name) and func.id in BUILTINS:
                text = ast.unparse(node.exc.args[0]) if node.exc.args else ""
                found.append((path.relative_to(SRC).as_posix(), node.lineno, func.id, text))
    return found


def test_no_builtin_exception_is_raised_for_user_input() -> None:
    offenders = [
        f"{path}:{line}: raise {name}({text})"
        for path, line, name, text in _builtin_raises()
        if not any(name == allowed and marker in text for allowed, marker in ALLOWED_BUILTIN_RAISES)
    ]
    assert offenders == [], "raise a faceprint.errors class instead:\n" + "\n".join(offenders)


def test_the_builtin_raise_scan_sees_raises() -> None:
    # the scan above must not pass by finding nothing: the allowed programming errors are there
    names = {(name, text) for _, _, name, text in _builtin_raises()}
    assert any(name == "ValueError" and "is already registered" in text for name, text in names)
