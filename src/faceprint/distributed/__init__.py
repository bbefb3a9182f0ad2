"""Running library calls on a cluster: bulk enrollment on Ray (:func:`ray_runner`).

Needs the ``[ray]`` extra; nothing here imports Ray until a runner runs.
"""

from __future__ import annotations

from .ray_enrollment import ray_runner

__all__ = ["ray_runner"]
