"""A bounded atheris run over :func:`faceprint.io.load_image` (tests/test_io.py runs it in a subprocess).

    python tests/fuzz_load_image.py -runs=3000 -seed=1 -rss_limit_mb=3000 -max_len=65536 SEED_DIR

Every input must decode to an RGB ``uint8`` image or raise :class:`InvalidImageError`; anything
else is a crash atheris reports (exit code != 0). SEED_DIR holds small valid images to mutate.
"""

from __future__ import annotations

import sys

import atheris
import numpy as np
from PIL import Image  # noqa: F401 - imported (and not instrumented) before faceprint.io

with atheris.instrument_imports(include=["faceprint"]):
    from faceprint.errors import InvalidImageError
    from faceprint.io import load_image


def one_input(data: bytes) -> None:
    try:
        image = load_image(data, max_pixels=4_000_000)
    except InvalidImageError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, image.shape


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
