"""Embed every LFW image once (default pipeline: YuNet central face + SFace, plus mirrored crops)
and cache the result for the identification, classifier and clustering benchmarks.

    python bench/lfw_embeddings.py   # -> bench/cache/lfw_all_sface.npz (git-ignored)

The cache holds ``paths`` (relative to lfw-deepfunneled), ``names`` (identity per image),
``sface`` and ``sface_flipped`` (unit vectors, NaN rows where no face was found).
Other scripts call :func:`load` which builds the cache on first use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.datasets import data_root  # noqa: E402
from faceprint.detection import get_detector, select_faces  # noqa: E402
from faceprint.embedding import get_embedder, l2_normalize  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402

CACHE = ROOT / "bench" / "cache" / "lfw_all_sface.npz"


def build(images: Path) -> dict[str, np.ndarray]:
    paths = sorted(images.glob("*/*.jpg"))
    det, emb = get_detector("yunet"), get_embedder("sface")
    out = np.full((len(paths), emb.dim), np.nan, np.float32)
    flipped = np.full_like(out, np.nan)
    t0 = time.time()
    for i, p in enumerate(paths):
        img = load_image(p)
        faces = select_faces(det.detect(img), img.shape, "central")
        if faces:
            crop = emb.align(img, faces[0])  # type: ignore[attr-defined]
            out[i] = emb.embed(crop[None])[0]  # type: ignore[attr-defined]
            flipped[i] = emb.embed(np.ascontiguousarray(crop[None, :, ::-1]))[0]  # type: ignore[attr-defined]
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1}/{len(paths)} images, {(i + 1) / (time.time() - t0):.1f} img/s", flush=True)
    rel = np.array([str(p.relative_to(images)) for p in paths])
    names = np.array([p.parent.name for p in paths])
    return {"paths": rel, "names": names, "sface": out, "sface_flipped": flipped}


def load(flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(paths, names, embeddings) over all LFW images with a face; builds the cache if needed."""
    if not CACHE.exists():
        root = data_root(required=True)
        assert root is not None
        set_num_threads(2)
        data = build(root / "lfw" / "lfw-deepfunneled")
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(CACHE, **data)  # type: ignore[arg-type]
    z = np.load(CACHE, allow_pickle=False)
    emb = l2_normalize(z["sface"] + z["sface_flipped"]) if flip else z["sface"]
    ok = ~np.isnan(emb[:, 0])
    return z["paths"][ok], z["names"][ok], emb[ok]


if __name__ == "__main__":
    p, n, e = load()
    print(f"{len(p)} images with a face, {len(set(n.tolist()))} identities, dim {e.shape[1]} -> {CACHE}")
