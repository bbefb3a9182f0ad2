"""Install-time check: exactly one OpenCV distribution, and every model file present and intact."""

from __future__ import annotations

import sys
from importlib import metadata


def main() -> int:
    opencv = sorted(
        d.metadata["Name"] for d in metadata.distributions() if (d.metadata["Name"] or "").lower().startswith("opencv")
    )
    if opencv != ["opencv-python-headless"]:
        print(f"error: expected exactly opencv-python-headless, found {opencv}", file=sys.stderr)
        return 1
    from faceprint import weights

    for key in weights.WEIGHT_FILES:
        if weights.WEIGHT_FILES[key].attribute:
            weights.read_bytes(key)
        else:
            weights.locate(key)
    models = ", ".join(weights.WEIGHT_FILES)
    print(f"environment ok: {opencv[0]} {metadata.version(opencv[0])}, models {models} verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
