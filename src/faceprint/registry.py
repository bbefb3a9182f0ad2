"""A small per-stage backend registry (torchvision-style ``register`` / ``get`` / ``names``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import UnknownBackendError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a backend name to a factory.

    Examples
    --------
    >>> DETECTORS: Registry[object] = Registry("detector")
    >>> @DETECTORS.register("null")
    ... class NullDetector:
    ...     pass
    >>> DETECTORS.names()
    ['null']
    """

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.stage} backend {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; :class:`~faceprint.errors.UnknownBackendError` lists the valid ones."""
        try:
            return self._factories[name]
        except KeyError:
            valid = ", ".join(self.names()) or "(none)"
            raise UnknownBackendError(f"unknown {self.stage} {name!r}; valid names: {valid}") from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Build the backend registered as ``name`` (weights still load lazily)."""
        return self.factory(name)(**kwargs)
