"""Tests of faceprint.liveness.synthetic: simulated print / replay attacks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceprint.errors import InvalidArgumentError, InvalidImageError, UnknownBackendError
from faceprint.liveness.synthetic import (
    ATTACK_EFFECTS,
    ATTACK_KINDS,
    CAPTURE_EFFECTS,
    get_effect,
    high_frequency_energy,
    simulate_attack,
    simulate_capture,
)


def _face_like(size: int = 96) -> np.ndarray:
    """A synthetic 'face': a shaded ellipse on a gradient background, with some fine skin texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bg = 60 + 120 * xx
    face = np.exp(-(((xx - 0.5) / 0.28) ** 2 + ((yy - 0.5) / 0.36) ** 2) * 2) * 110
    face = face + cv2.GaussianBlur(np.random.default_rng(0).normal(0, 12, (size, size)).astype(np.float32), (0, 0), 0.8)
    img = np.stack([bg + face, bg * 0.9 + face * 0.8, bg * 0.7 + face * 0.6], axis=2)
    return np.clip(img, 0, 255).astype(np.uint8)


ALL_EFFECTS = sorted({e for effects in ATTACK_KINDS.values() for e in effects} | set(CAPTURE_EFFECTS))


def test_registry_lists_every_effect() -> None:
    assert ATTACK_EFFECTS.names() == ALL_EFFECTS
    with pytest.raises(UnknownBackendError):
        get_effect("hologram")


@pytest.mark.parametrize("name", ALL_EFFECTS)
def test_each_effect_shape_dtype_determinism_and_change(name: str) -> None:
    img = _face_like()
    before = img.copy()
    out = get_effect(name)(img, np.random.default_rng(7))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == before).all()  # input untouched
    assert (out == get_effect(name)(img, np.random.default_rng(7))).all()
    assert np.abs(out.astype(np.int16) - img).mean() > 1.0  # a measurable change


def test_simulate_attack_is_seeded() -> None:
    img = _face_like()
    for kind in ATTACK_KINDS:
        a = simulate_attack(img, kind, seed=(1, 2))
        assert a.shape == img.shape and a.dtype == np.uint8
        assert (a == simulate_attack(img, kind, seed=(1, 2))).all()
        assert not (a == simulate_attack(img, kind, seed=(1, 3))).all()
    only = simulate_attack(img, "print", seed=0, effects=["gamut"], always=True)
    assert (only == get_effect("gamut")(img, _rng_after_draws(0, 1))).all()
    with pytest.raises(InvalidArgumentError):
        simulate_attack(img, "mask")
    with pytest.raises(InvalidArgumentError):
        simulate_attack(img, "print", effects=["moire"])
    with pytest.raises(InvalidImageError):
        simulate_attack(img[..., 0], "print")


def _rng_after_draws(seed: int, n: int) -> np.random.Generator:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        rng.random()
    return rng


def test_screen_and_print_effects_add_high_frequency_energy() -> None:
    flat = np.full((96, 96, 3), 150, np.uint8)
    base = high_frequency_energy(_face_like())
    for name in ("moire", "halftone", "paper"):
        out = get_effect(name)(flat, np.random.default_rng(0))
        assert out.std() > 3.0, name  # a pattern out of a flat field
        assert high_frequency_energy(out) > 0.05, name
        assert high_frequency_energy(get_effect(name)(_face_like(), np.random.default_rng(0))) > base, name
    assert high_frequency_energy(get_effect("blur")(_face_like(), np.random.default_rng(0))) < base


def test_print_and_screen_photometry() -> None:
    img = _face_like()
    g = get_effect("gamut")(img, np.random.default_rng(0))
    assert g.std() < img.std() and g.min() > img.min() and g.max() < img.max()  # contrast and range lost
    hsv_in, hsv_out = (cv2.cvtColor(x, cv2.COLOR_RGB2HSV)[..., 1].mean() for x in (img, g))
    assert hsv_out < hsv_in  # saturation lost
    flat = np.full((96, 96, 3), 120, np.uint8)
    band = get_effect("banding")(flat, np.random.default_rng(0)).astype(np.float64)
    rows = band.mean(axis=(1, 2))
    assert rows.std() > 2.0 and band.std(axis=1).max() < 1.0  # varies along rows only
    bez = get_effect("bezel")(img, np.random.default_rng(0))
    edges = np.concatenate([bez[0].ravel(), bez[-1].ravel(), bez[:, 0].ravel(), bez[:, -1].ravel()])
    assert (edges <= 35).mean() >= 0.25  # at least one whole edge turned near black
    gl = get_effect("glare")(img, np.random.default_rng(0))
    assert (gl >= img).all() and gl.mean() > img.mean() + 2
    c = get_effect("cast")(flat, np.random.default_rng(0)).reshape(-1, 3).mean(axis=0)
    assert c[2] > c[0]  # bluish cast


def test_simulate_capture_is_seeded_and_optional() -> None:
    img = _face_like()
    a = simulate_capture(img, seed=(3, 4), probability=1.0)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert (a == simulate_capture(img, seed=(3, 4), probability=1.0)).all()
    assert not (a == simulate_capture(img, seed=(3, 5), probability=1.0)).all()
    same = simulate_capture(img, probability=0.0)
    assert (same == img).all() and same is not img
    with pytest.raises(InvalidArgumentError):
        simulate_capture(img, probability=1.5)


def test_exposure_darkens_or_brightens_within_its_range() -> None:
    img = np.full((32, 32, 3), 160, np.uint8)
    means = [float(get_effect("exposure")(img, np.random.default_rng(s)).mean()) for s in range(40)]
    assert min(means) < 90 and max(means) > 160  # gain 0.35-1.25 and gamma: both directions occur
