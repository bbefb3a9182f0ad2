"""The built-in demo: enroll people from photos that ship with installed packages, then identify
altered copies of them and reject a stranger. With the shared LFW data present it also enrolls a
few LFW people from one photo each and identifies their other photos.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from .evaluation import data_root
from .gallery import Gallery
from .io import load_image
from .pipeline import UNKNOWN, FacePipeline
from .runtime import set_num_threads
from .types import Image

__all__ = ["run_demo", "sample_photos"]


def sample_photos() -> dict[str, Image]:
    """Portraits bundled with scikit-image and matplotlib (public-domain photos)."""
    from importlib import resources

    import matplotlib.cbook
    from skimage import data

    hopper = load_image(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    camera = load_image(Path(str(resources.files("skimage.data").joinpath("camera.png"))))
    return {"Eileen Collins": data.astronaut(), "Grace Hopper": hopper, "stranger (cameraman)": camera}


def _alterations(img: Image) -> dict[str, Image]:
    h, w = img.shape[:2]
    rot = np.asarray(
        cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT),
        np.uint8,
    )
    ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 25])
    assert ok
    return {
        "mirrored": np.ascontiguousarray(img[:, ::-1]),
        "darker (x0.5)": (img.astype(np.float32) * 0.5).astype(np.uint8),
        "rotated 12 deg": rot,
        "JPEG q=25": load_image(jpg.tobytes()),
        "half size": np.asarray(cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA), np.uint8),
    }


@dataclass(frozen=True)
class _Row:
    probe: str
    expected: str
    got: str
    similarity: float

    @property
    def ok(self) -> bool:
        return self.got == self.expected


def _lfw_people(n: int = 6) -> list[tuple[str, list[Path]]]:
    root = data_root()
    if root is None:
        return []
    images = root / "lfw" / "lfw-deepfunneled"
    if not images.is_dir():
        return []
    people = []
    for name in ("George_W_Bush", "Serena_Williams", "Junichiro_Koizumi", "Gloria_Macapagal_Arroyo",
                 "Hugo_Chavez", "Jennifer_Capriati", "Vladimir_Putin", "Lleyton_Hewitt"):
        files = sorted((images / name).glob("*.jpg"))
        if len(files) >= 3:
            people.append((name.replace("_", " "), files[:3]))
        if len(people) == n:
            break
    return people


def _lfw_stranger() -> Path | None:
    root = data_root()
    if root is None:
        return None
    path = root / "lfw" / "lfw-deepfunneled" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    return path if path.is_file() else None


def run_demo(console: Console, *, gallery: Path | None = None, threads: int | None = None) -> bool:
    """Run the demo and print a table; returns True when every decision is correct."""
    if threads is not None:
        set_num_threads(threads)
    pipe = FacePipeline()
    rows: list[_Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = gallery or Path(tmp) / "demo.db"
        with Gallery(db) as g:
            photos = sample_photos()
            stranger = photos.pop("stranger (cameraman)")
            for name, img in photos.items():
                if name in g:
                    g.remove(name)
                pipe.enroll(name, img, g)
            for name, img in photos.items():
                for what, altered in _alterations(img).items():
                    rows.append(_decide(pipe, g, altered, f"{name}, {what}", name))
            rows.append(_decide(pipe, g, stranger, "stranger (skimage cameraman)", UNKNOWN))
            people = _lfw_people()
            for name, files in people:
                if name in g:
                    g.remove(name)
                pipe.enroll(name, files[0], g)
                for f in files[1:]:
                    rows.append(_decide(pipe, g, f, f"LFW {f.name}", name))
            stranger_path = _lfw_stranger()
            if people and stranger_path is not None:
                rows.append(_decide(pipe, g, stranger_path, f"LFW {stranger_path.name} (never enrolled)", UNKNOWN))
    table = Table(title=f"faceprint demo: {pipe.embedder.fingerprint}, threshold at FMR {pipe.fmr}")  # type: ignore[union-attr]
    for col in ("probe", "expected", "identified as", "similarity", ""):
        table.add_column(col)
    for r in rows:
        mark = "[green]ok[/]" if r.ok else "[red]WRONG[/]"
        table.add_row(r.probe, r.expected, r.got, f"{r.similarity:.3f}", mark)
    console.print(table)
    n_ok = sum(r.ok for r in rows)
    console.print(f"{n_ok}/{len(rows)} correct" + ("" if data_root() else
                  " (set FACEPRINT_DATA to add LFW people to the demo)"))
    return n_ok == len(rows)


def _decide(pipe: FacePipeline, g: Gallery, probe: object, label: str, expected: str) -> _Row:
    results = pipe.identify(probe, g, k=1, select="largest")  # type: ignore[arg-type]
    if not results:
        return _Row(label, expected, "(no face)", float("nan"))
    r = results[0]
    sim = r.matches[0].similarity if r.matches else float("nan")
    return _Row(label, expected, r.name, sim)
