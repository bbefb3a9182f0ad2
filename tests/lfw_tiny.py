"""A tiny copy of the LFW layout (real images) for fast protocol / CLI / report tests."""

from __future__ import annotations

import shutil
from pathlib import Path


def make_tiny_lfw(data_root: Path, root: Path, *, gender_lists: bool = True) -> Path:
    """``root/lfw``: a 2-fold view-2 pairs.txt with 3 genuine + 3 impostor pairs per fold, the images
    those pairs use, and (optionally) the gender lists. Returns ``root``."""
    src = (data_root / "lfw" / "pairs.txt").read_text().splitlines()
    fold0, fold1 = src[1:601], src[601:1201]
    lines = ["2 3"] + fold0[:3] + fold0[300:303] + fold1[:3] + fold1[300:303]
    (root / "lfw").mkdir(parents=True)
    (root / "lfw" / "pairs.txt").write_text("\n".join(lines) + "\n")
    if gender_lists:
        for lists in ("male_names.txt", "female_names.txt"):
            shutil.copy(data_root / "lfw" / lists, root / "lfw" / lists)
    images = root / "lfw" / "lfw-deepfunneled"
    for line in lines[1:]:
        parts = line.split()
        for name in [parts[0]] if len(parts) == 3 else [parts[0], parts[2]]:
            if not (images / name).exists():
                shutil.copytree(data_root / "lfw" / "lfw-deepfunneled" / name, images / name)
    return root
