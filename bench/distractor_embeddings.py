"""Embed the non-LFW faces of the shared data (UTKFace, ORL) once, as open-set gallery distractors.

    python bench/distractor_embeddings.py   # -> bench/cache/distractors_sface.npz (git-ignored)

Same pipeline as ``bench/lfw_embeddings.py`` (YuNet central face + SFace, and the mirrored crop).
The cache holds ``paths`` (relative to the data sets folder), ``sources`` (``utkface`` / ``orl``),
``people`` (ORL person number; -1 for UTKFace, which has no identities), ``sface`` and
``sface_flipped`` (NaN rows where no face was found). Other scripts call :func:`load`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceprint.datasets import data_root, orl_images, utkface_images  # noqa: E402
from faceprint.detection import get_detector, select_faces  # noqa: E402
from faceprint.embedding import get_embedder, l2_normalize  # noqa: E402
from faceprint.io import load_image  # noqa: E402
from faceprint.runtime import set_num_threads  # noqa: E402

CACHE = ROOT / "bench" / "cache" / "distractors_sface.npz"


def build(root: Path) -> dict[str, np.ndarray]:
    items = [(p, "utkface", -1) for p in utkface_images(root)] + [(p, "orl", n) for p, n in orl_images(root)]
    det, emb = get_detector("yunet"), get_embedder("sface")
    out = np.full((len(items), emb.dim), np.nan, np.float32)
    flipped = np.full_like(out, np.nan)
    t0 = time.time()
    for i, (p, _, _) in enumerate(items):
        img = load_image(p)
        faces = select_faces(det.detect(img), img.shape, "central")
        if faces:
            crop = emb.align(img, faces[0])  # type: ignore[attr-defined]
            out[i] = emb.embed(crop[None])[0]  # type: ignore[attr-defined]
            flipped[i] = emb.embed(np.ascontiguousarray(crop[None, :, ::-1]))[0]  # type: ignore[attr-defined]
        if (i + 1) % 1000 == 0:
            print(f"  {i + 1}/{len(items)} images, {(i + 1) / (time.time() - t0):.1f} img/s", flush=True)
    return {
        "paths": np.array([str(p.relative_to(root)) for p, _, _ in items]),
        "sources": np.array([s for _, s, _ in items]),
        "people": np.array([n for _, _, n in items], np.int64),
        "sface": out,
        "sface_flipped": flipped,
    }


def load(flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(paths, sources, people, embeddings) of every distractor image with a face; builds the cache if needed."""
    if not CACHE.exists():
        root = data_root(required=True)
        assert root is not None
        set_num_threads(2)
        data = build(root)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(CACHE, **data)  # type: ignore[arg-type]
    z = np.load(CACHE, allow_pickle=False)
    emb = l2_normalize(z["sface"] + z["sface_flipped"]) if flip else z["sface"]
    ok = ~np.isnan(emb[:, 0])
    return z["paths"][ok], z["sources"][ok], z["people"][ok], emb[ok]


if __name__ == "__main__":
    p, s, _, e = load()
    counts = ", ".join(f"{k} {int((s == k).sum())}" for k in ("utkface", "orl"))
    print(f"{len(p)} distractor images with a face ({counts})")
