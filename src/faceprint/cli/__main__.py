"""``python -m faceprint.cli``."""

from . import main

main()
