"""faceprint.settings: every environment variable, its default, bad values, and the one reader of os.environ."""

from __future__ import annotations

import ast
import io
import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from rich.console import Console

import faceprint
from faceprint.cli import common as cli
from faceprint.cli import train as train_command
from faceprint.errors import FaceprintError, ImageTooLargeError, InvalidImageError
from faceprint.io import load_image, max_pixels
from faceprint.settings import DEFAULT_MAX_PIXELS, Settings, current_settings, setdefault_omp_num_threads

VARIABLES = (
    "FACEPRINT_MAX_PIXELS",
    "FACEPRINT_MAX_FILE_BYTES",
    "FACEPRINT_GALLERY",
    "XDG_DATA_HOME",
    "FACEPRINT_PROGRESS",
    "FACEPRINT_DATA",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No faceprint variable set, and HOME under tmp_path (Path.home() reads it)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


# -- defaults ----------------------------------------------------------------------------------
def test_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = Settings()
    assert s.max_pixels == DEFAULT_MAX_PIXELS == 50_000_000
    assert s.gallery is None
    assert s.xdg_data_home is None
    assert s.progress is False
    assert s.data is None
    assert s.gallery_path() == tmp_path / "home" / ".local" / "share" / "faceprint" / "gallery.db"
    assert current_settings() == s


# -- each variable -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("FACEPRINT_MAX_PIXELS", "1234", "max_pixels", 1234),
        ("FACEPRINT_MAX_PIXELS", " 77 ", "max_pixels", 77),  # int() accepts surrounding blanks, as before
        ("FACEPRINT_MAX_FILE_BYTES", "4096", "max_file_bytes", 4096),
        ("FACEPRINT_GALLERY", "/srv/faces.db", "gallery", Path("/srv/faces.db")),
        ("FACEPRINT_GALLERY", "", "gallery", None),  # empty means unset
        ("XDG_DATA_HOME", "/xdg", "xdg_data_home", Path("/xdg")),
        ("FACEPRINT_PROGRESS", "1", "progress", True),
        ("FACEPRINT_PROGRESS", "true", "progress", False),  # only "1" turns it on
        ("FACEPRINT_PROGRESS", "0", "progress", False),
        ("FACEPRINT_PROGRESS", "", "progress", False),
        ("FACEPRINT_DATA", "/data/sets", "data", Path("/data/sets")),
        ("FACEPRINT_DATA", "", "data", None),  # empty means unset
    ],
)
def test_each_variable_is_read(
    clean_env: pytest.MonkeyPatch, variable: str, raw: str, field: str, expected: object
) -> None:
    clean_env.setenv(variable, raw)
    assert getattr(Settings(), field) == expected
    assert getattr(current_settings(), field) == expected
    others = {name: value for name, value in Settings().model_dump().items() if name != field}
    assert others == {name: value for name, value in Settings.model_construct().model_dump().items() if name != field}
    clean_env.delenv(variable)  # passed as a keyword, by the variable's name, it means the same
    assert getattr(Settings(**{variable: raw}), field) == expected


def test_gallery_path(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().gallery_path() == tmp_path / "xdg" / "faceprint" / "gallery.db"
    clean_env.setenv("FACEPRINT_GALLERY", str(tmp_path / "g.db"))  # wins over XDG_DATA_HOME
    assert Settings().gallery_path() == tmp_path / "g.db"
    clean_env.setenv("FACEPRINT_GALLERY", "")
    assert Settings().gallery_path() == tmp_path / "xdg" / "faceprint" / "gallery.db"
    # an empty XDG_DATA_HOME is taken as given (Path("") is the current folder), as before settings.py
    clean_env.setenv("XDG_DATA_HOME", "")
    assert Settings().gallery_path() == Path("faceprint") / "gallery.db"


def test_names_are_exact_and_keywords_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("faceprint_max_pixels", "5")  # environment names are case-sensitive, as os.environ
    clean_env.setenv("max_pixels", "6")  # a field's name is not a variable
    clean_env.setenv("progress", "1")
    clean_env.setenv("gallery", "/elsewhere.db")
    assert Settings() == Settings.model_construct()  # all defaults
    clean_env.setenv("FACEPRINT_MAX_PIXELS", "9")
    assert Settings(max_pixels=10).max_pixels == 10
    assert Settings(progress=True).progress is True
    assert Settings(gallery=Path("x.db")).gallery_path() == Path("x.db")


def test_frozen() -> None:
    s = Settings(max_pixels=10)
    with pytest.raises(ValidationError):
        s.max_pixels = 11  # type: ignore[misc]
    assert hash(s) == hash(Settings(max_pixels=10))


# -- bad values: same error type and message as before settings.py -----------------------------
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "FACEPRINT_MAX_PIXELS must be an integer, got 'abc'"),
        ("1e6", "FACEPRINT_MAX_PIXELS must be an integer, got '1e6'"),
        ("1.0", "FACEPRINT_MAX_PIXELS must be an integer, got '1.0'"),
        ("", "FACEPRINT_MAX_PIXELS must be an integer, got ''"),
        ("0", "FACEPRINT_MAX_PIXELS must be positive, got 0"),
        ("-5", "FACEPRINT_MAX_PIXELS must be positive, got -5"),
    ],
)
def test_bad_max_pixels(clean_env: pytest.MonkeyPatch, raw: str, message: str) -> None:
    clean_env.setenv("FACEPRINT_MAX_PIXELS", raw)
    for build in (Settings, current_settings, max_pixels, lambda: load_image(np.zeros((2, 2, 3), np.uint8))):
        with pytest.raises(InvalidImageError) as info:
            build()
        assert str(info.value) == message
        assert isinstance(info.value, FaceprintError) and isinstance(info.value, ValueError)
        assert not isinstance(info.value, ValidationError)
    clean_env.delenv("FACEPRINT_MAX_PIXELS")
    with pytest.raises(InvalidImageError, match="^FACEPRINT_MAX_PIXELS must be"):
        Settings(max_pixels=raw)  # passed by name: the same check


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "FACEPRINT_MAX_FILE_BYTES must be an integer, got 'abc'"),
        ("50MB", "FACEPRINT_MAX_FILE_BYTES must be an integer, got '50MB'"),
        ("0", "FACEPRINT_MAX_FILE_BYTES must be positive, got 0"),
    ],
)
def test_bad_max_file_bytes(clean_env: pytest.MonkeyPatch, raw: str, message: str, tmp_path: Path) -> None:
    clean_env.setenv("FACEPRINT_MAX_FILE_BYTES", raw)
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG")
    for build in (Settings, current_settings, lambda: load_image(path)):
        with pytest.raises(InvalidImageError) as info:
            build()
        assert str(info.value) == message
    with pytest.raises(InvalidImageError, match="must be an integer"):
        Settings(max_file_bytes=True)


@pytest.mark.parametrize("value", [True, 2.0, None])
def test_max_pixels_keyword_must_be_an_int(value: object) -> None:
    with pytest.raises(InvalidImageError, match="must be an integer"):
        Settings(max_pixels=value)


def test_other_validation_errors_stay_pydantic() -> None:
    with pytest.raises(ValidationError):
        Settings(gallery=3.5)


# -- current_settings follows the environment ----------------------------------------------------
def test_current_settings_follows_changes(clean_env: pytest.MonkeyPatch) -> None:
    first = current_settings()
    assert current_settings() is first  # unchanged environment: the cached object
    clean_env.setenv("FACEPRINT_MAX_PIXELS", "399")
    assert current_settings().max_pixels == 399
    arr = np.zeros((20, 20, 3), np.uint8)  # 400 px
    with pytest.raises(ImageTooLargeError):
        load_image(arr)
    clean_env.setenv("FACEPRINT_MAX_PIXELS", "400")
    assert load_image(arr).shape == (20, 20, 3)
    clean_env.setenv("FACEPRINT_PROGRESS", "1")
    assert current_settings() == Settings() == Settings(max_pixels=400, progress=True)
    clean_env.setenv("FACEPRINT_MAX_PIXELS", "nope")  # a bad value is refused on every call, never cached
    for _ in range(2):
        with pytest.raises(InvalidImageError):
            current_settings()
    clean_env.delenv("FACEPRINT_MAX_PIXELS")
    clean_env.delenv("FACEPRINT_PROGRESS")
    assert current_settings() == first


# -- readers -------------------------------------------------------------------------------------
def test_cli_helpers_use_settings(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    given = Settings(gallery=tmp_path / "a.db", progress=True)
    assert cli._gallery_path(None, given) == tmp_path / "a.db"
    assert cli._gallery_path(tmp_path / "flag.db", given) == tmp_path / "flag.db"  # --gallery wins
    assert cli._progress(given).disable is False  # CliRunner's stderr is no terminal
    assert cli._progress(Settings()).disable is (not cli.err.is_terminal)
    # without settings they read the environment now
    clean_env.setenv("FACEPRINT_GALLERY", str(tmp_path / "env.db"))
    assert cli._gallery_path(None) == tmp_path / "env.db"
    assert cli._progress().disable is (not cli.err.is_terminal)
    clean_env.setenv("FACEPRINT_PROGRESS", "1")
    assert cli._progress().disable is False


def test_train_progress_reads_settings(clean_env: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO())  # not a terminal
    assert train_command._progress(console).disable is True
    clean_env.setenv("FACEPRINT_PROGRESS", "1")
    assert train_command._progress(console).disable is False


def test_setdefault_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    setdefault_omp_num_threads(3)
    assert os.environ["OMP_NUM_THREADS"] == "3"
    setdefault_omp_num_threads(5)  # already set: kept
    assert os.environ["OMP_NUM_THREADS"] == "3"


# -- settings.py is the only module that touches the environment -------------------------------
_ENV_ATTRS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
ALLOWED = {"settings.py"}


def environment_uses(source: str) -> list[int]:
    """Line numbers where ``source`` reads or writes the process environment through ``os``."""
    tree = ast.parse(source)
    os_names = {"os"}
    env_names: set[str] = set()
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            hits = [a for a in node.names if a.name in _ENV_ATTRS]
            env_names |= {a.asname or a.name for a in hits}
            if hits:
                lines.append(node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _ENV_ATTRS:
            if isinstance(node.value, ast.Name) and node.value.id in os_names:
                lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in env_names:
            lines.append(node.lineno)
    return sorted(set(lines))


def test_environment_scanner_finds_uses() -> None:
    assert environment_uses("import os\nx = os.environ.get('A')\n") == [2]
    assert environment_uses("import os as o\n\n\no.getenv('A')\n") == [4]
    assert environment_uses("from os import environ\nenviron.get('A')\n") == [1, 2]
    assert environment_uses("import os\nos.environ.setdefault('A', '1')\nos.putenv('B', '2')\n") == [2, 3]
    assert environment_uses('"""os.environ in a docstring"""\nimport os\nos.path.join("a")\n') == []


def test_only_settings_reads_the_environment() -> None:
    package = Path(faceprint.__file__).parent
    offenders = {
        f"{path.relative_to(package)}:{line}"
        for path in sorted(package.rglob("*.py"))
        if str(path.relative_to(package)) not in ALLOWED
        for line in environment_uses(path.read_text(encoding="utf-8"))
    }
    assert not offenders, f"os.environ / os.getenv outside settings.py: {sorted(offenders)}"
    assert environment_uses((package / "settings.py").read_text(encoding="utf-8"))  # the scan sees settings.py
