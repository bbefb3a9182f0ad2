"""Synthetic presentation attacks: a bona fide face image turned into a simulated print or replay.

Training data for passive PAD beyond the few people of a PAD data set: every face of LFW, UTKFace
or ORL becomes an attack sample. Each *effect* is a function ``(image, rng) -> image`` on an RGB
``uint8`` array (vectorised NumPy / OpenCV, a new array of the same shape), registered by name in
:data:`ATTACK_EFFECTS`:

print
    ``gamut`` (ink gamut and contrast loss: raised black, lowered white, less saturation),
    ``halftone`` (clustered-dot CMY screens at the classic angles, with ink spread),
    ``paper`` (multiplicative paper-fibre texture), ``glare`` (a specular highlight),
    ``bend`` (a perspective tilt and a cylindrical bend of the sheet);
replay
    ``moire`` (the image shown on an RGB-stripe pixel grid and re-sampled at a slight rotation and
    scale without anti-aliasing: beat patterns), ``cast`` (display colour cast and black level),
    ``banding`` (horizontal refresh bands), ``bezel`` (a dark screen border on one or two sides);
re-capture (both)
    ``blur`` (defocus or motion blur), ``noise`` (sensor noise, then JPEG).

:data:`ATTACK_KINDS` lists the effects of each kind in the order :func:`simulate_attack` applies
them (some with a probability, :data:`EFFECT_PROBABILITY`). Everything is seeded: the same image,
kind, effects and seed give the same bytes.

Examples
--------
>>> img = np.full((64, 64, 3), 128, np.uint8)
>>> out = simulate_attack(img, "replay", seed=3)
>>> out.shape, out.dtype
((64, 64, 3), dtype('uint8'))
>>> bool((out == simulate_attack(img, "replay", seed=3)).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import InvalidArgumentError, InvalidImageError
from ..registry import Registry
from ..types import Image

__all__ = [
    "ATTACK_EFFECTS",
    "ATTACK_KINDS",
    "EFFECT_PROBABILITY",
    "Effect",
    "get_effect",
    "simulate_attack",
    "CAPTURE_EFFECTS",
    "simulate_capture",
    "high_frequency_energy",
]

Effect = Callable[[Image, np.random.Generator], Image]
"""An attack effect: ``effect(image, rng)`` returns a new RGB uint8 image of the same shape."""

ATTACK_EFFECTS: Registry[Image] = Registry("attack effect")
"""Effect name -> effect function (``ATTACK_EFFECTS.factory(name)``, or :func:`get_effect`)."""

FloatImage = npt.NDArray[Any]


def _f(image: Image) -> FloatImage:
    return image.astype(np.float32) / 255.0


def _u8(x: FloatImage) -> Image:
    return np.clip(np.rint(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def _arr(x: Any) -> Image:
    """An OpenCV result as a uint8 ndarray (for the type checker; no copy)."""
    return np.asarray(x, dtype=np.uint8)


def _check(image: Image) -> Image:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError("attack effects take an RGB uint8 image of shape (h, w, 3)")
    if min(image.shape[:2]) < 8:
        raise InvalidImageError(f"image too small for attack effects: {image.shape[1]}x{image.shape[0]}")
    return image


# -- print -----------------------------------------------------------------------------------
@ATTACK_EFFECTS.register("gamut")
def gamut(image: Image, rng: np.random.Generator) -> Image:
    """Ink gamut and contrast loss: black raised to 8-18 %, white lowered to 82-94 %, saturation x 0.55-0.85."""
    x = _f(image)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.55, 0.85)
    lo, hi = rng.uniform(0.08, 0.18), rng.uniform(0.82, 0.94)
    x = lo + (hi - lo) * np.power(np.clip(x, 0, 1), rng.uniform(0.85, 1.15))
    return _u8(x)


@ATTACK_EFFECTS.register("halftone")
def halftone(image: Image, rng: np.random.Generator) -> Image:
    """Clustered-dot halftone: C, M, Y screens of period 2.5-4 px at 15, 75 and 0 degrees, ink spread blur."""
    h, w = image.shape[:2]
    cmy = 1.0 - _f(image)
    period = rng.uniform(2.5, 4.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty_like(cmy)
    offset = rng.uniform(0, 2 * math.pi, size=2)
    for c, angle in enumerate((15.0, 75.0, 0.0)):
        a = math.radians(angle + rng.uniform(-3, 3))
        u = (xx * math.cos(a) + yy * math.sin(a)) * (2 * math.pi / period) + offset[0]
        v = (-xx * math.sin(a) + yy * math.cos(a)) * (2 * math.pi / period) + offset[1]
        screen = (np.cos(u) * np.cos(v) + 1.0) / 2.0  # in [0, 1], dot centres at 1
        out[..., c] = (cmy[..., c] > 1.0 - screen).astype(np.float32)
    spread = np.asarray(cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 0.8)), dtype=np.float32)
    mix = rng.uniform(0.15, 0.4)  # a real print is not pure binary dots at webcam resolution
    return _u8(1.0 - (mix * spread + (1 - mix) * cmy))


@ATTACK_EFFECTS.register("paper")
def paper(image: Image, rng: np.random.Generator) -> Image:
    """Paper texture: multiplicative fibre noise (blurred, 1.5-4 % amplitude) and a faint tint."""
    h, w = image.shape[:2]
    n = np.asarray(
        cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), rng.uniform(0.7, 1.6)),
        dtype=np.float32,
    )
    n /= float(n.std()) + 1e-6
    tint = 1.0 + rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    x = _f(image) * (1.0 + rng.uniform(0.015, 0.04) * n)[..., None] * tint
    return _u8(x)


@ATTACK_EFFECTS.register("glare")
def glare(image: Image, rng: np.random.Generator) -> Image:
    """A specular highlight: an elliptical Gaussian blob of white light, peak 0.3-0.7."""
    h, w = image.shape[:2]
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    sy, sx = rng.uniform(0.08, 0.3) * h, rng.uniform(0.08, 0.3) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    blob = np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2.0) * rng.uniform(0.3, 0.7)
    x = _f(image)
    return _u8(x + (1.0 - x) * blob[..., None])


@ATTACK_EFFECTS.register("bend")
def bend(image: Image, rng: np.random.Generator) -> Image:
    """A held sheet: a perspective tilt (corners moved up to 6 %) and a cylindrical bend (up to 4 %)."""
    h, w = image.shape[:2]
    src = np.asarray([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = (src + rng.uniform(-0.06, 0.06, size=(4, 2)) * np.asarray([w, h])).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    x = _arr(cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    amp = rng.uniform(0.015, 0.04) * h
    map_y = yy + amp * np.sin(np.pi * xx / w) - amp / 2
    # shading of the curved sheet: brighter where it faces the light
    shade = 1.0 + rng.uniform(-0.08, 0.08) * np.cos(np.pi * xx / w)
    out = _arr(cv2.remap(x, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101))
    return _u8(_f(out) * shade[..., None])


# -- replay ----------------------------------------------------------------------------------
@ATTACK_EFFECTS.register("moire")
def moire(image: Image, rng: np.random.Generator) -> Image:
    """Screen pixel grid and re-sampling: RGB stripe sub-pixels at 3x, then warped back without anti-aliasing."""
    h, w = image.shape[:2]
    k = 3
    up = cv2.resize(image, (w * k, h * k), interpolation=cv2.INTER_NEAREST).astype(np.float32) / 255.0
    mask = np.zeros((1, w * k, 3), np.float32)
    for c in range(3):
        mask[0, c::3, c] = 1.0
    gap = rng.uniform(0.05, 0.2)  # the dark rows between pixel lines
    rows = np.ones((h * k, 1, 1), np.float32)
    rows[k - 1 :: k] = 1.0 - gap
    amp = rng.uniform(0.04, 0.12)  # sub-pixel contrast as the camera sees it; mean brightness kept
    screen = up * (1.0 + amp * (3.0 * mask - 1.0)) * (rows / rows.mean())
    angle = rng.uniform(-6.0, 6.0)
    scale = rng.uniform(0.92, 1.08) / k
    m = cv2.getRotationMatrix2D((w * k / 2.0, h * k / 2.0), angle, scale)
    m[:, 2] += np.array([w / 2.0 - w * k / 2.0, h / 2.0 - h * k / 2.0])
    out = cv2.warpAffine(screen, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return _u8(np.clip(out, 0, 1))


@ATTACK_EFFECTS.register("cast")
def cast(image: Image, rng: np.random.Generator) -> Image:
    """Display colour cast: per-channel gains (bluish on average), raised black level, display gamma."""
    gains = np.asarray([rng.uniform(0.85, 1.02), rng.uniform(0.92, 1.05), rng.uniform(1.0, 1.18)], dtype=np.float32)
    black = rng.uniform(0.03, 0.12)
    x = np.power(_f(image), rng.uniform(0.8, 1.1)) * gains
    return _u8(black + (1.0 - black) * x)


@ATTACK_EFFECTS.register("banding")
def banding(image: Image, rng: np.random.Generator) -> Image:
    """Refresh banding: horizontal sinusoidal brightness bands, amplitude 4-10 %, period 6-30 px."""
    h = image.shape[0]
    y = np.arange(h, dtype=np.float32)
    period = rng.uniform(6.0, 30.0)
    bands = 1.0 + rng.uniform(0.04, 0.10) * np.sin(2 * np.pi * y / period + rng.uniform(0, 2 * np.pi))
    return _u8(_f(image) * bands[:, None, None].astype(np.float32))


@ATTACK_EFFECTS.register("bezel")
def bezel(image: Image, rng: np.random.Generator) -> Image:
    """A screen border in view: a near-black band (4-12 % of the side) along one or two image edges."""
    h, w = image.shape[:2]
    out = image.copy()
    sides = rng.choice(4, size=int(rng.integers(1, 3)), replace=False)
    colour = rng.uniform(5, 35, size=3).astype(np.uint8)
    for side in sides.tolist():
        frac = rng.uniform(0.04, 0.12)
        if side == 0:
            out[: max(1, int(h * frac))] = colour
        elif side == 1:
            out[h - max(1, int(h * frac)) :] = colour
        elif side == 2:
            out[:, : max(1, int(w * frac))] = colour
        else:
            out[:, w - max(1, int(w * frac)) :] = colour
    return out


# -- re-capture ------------------------------------------------------------------------------
@ATTACK_EFFECTS.register("blur")
def blur(image: Image, rng: np.random.Generator) -> Image:
    """Re-capture blur: defocus (Gaussian, sigma 0.6-1.4) or short motion blur (3-7 px), equally likely."""
    if rng.random() < 0.5:
        return _arr(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 1.4)))
    n = int(rng.integers(3, 8))
    kernel = np.zeros((n, n), np.float32)
    kernel[n // 2, :] = 1.0 / n
    m = cv2.getRotationMatrix2D(((n - 1) / 2.0, (n - 1) / 2.0), rng.uniform(0, 180), 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, m, (n, n)), dtype=np.float32)
    kernel /= kernel.sum()
    return _arr(cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101))


@ATTACK_EFFECTS.register("noise")
def noise(image: Image, rng: np.random.Generator) -> Image:
    """Sensor noise (Gaussian, sigma 1.5-5 grey levels) followed by JPEG at quality 55-90."""
    x = image.astype(np.float32) + rng.normal(0.0, rng.uniform(1.5, 5.0), size=image.shape).astype(np.float32)
    noisy = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    q = int(rng.integers(55, 91))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if dec is None:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        return noisy
    return np.ascontiguousarray(cv2.cvtColor(dec, cv2.COLOR_BGR2RGB))


# -- capture conditions (bona fide and attacks alike) ----------------------------------------
@ATTACK_EFFECTS.register("exposure")
def exposure(image: Image, rng: np.random.Generator) -> Image:
    """Under- or over-exposure: gain 0.35-1.25 and display gamma 0.75-1.35 (a dim room, a bright window)."""
    x = _f(image) * rng.uniform(0.35, 1.25)
    return _u8(np.power(np.clip(x, 0, 1), rng.uniform(0.75, 1.35)))


@ATTACK_EFFECTS.register("white_balance")
def white_balance(image: Image, rng: np.random.Generator) -> Image:
    """Camera white balance: independent per-channel gains 0.85-1.15."""
    return _u8(_f(image) * rng.uniform(0.85, 1.15, size=3).astype(np.float32))


@ATTACK_EFFECTS.register("resolution")
def resolution(image: Image, rng: np.random.Generator) -> Image:
    """A small or far face: area-downscaled to 35-80 % of its side, then linearly upscaled back."""
    h, w = image.shape[:2]
    f = rng.uniform(0.35, 0.8)
    small = cv2.resize(image, (max(2, round(w * f)), max(2, round(h * f))), interpolation=cv2.INTER_AREA)
    return _arr(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


CAPTURE_EFFECTS: tuple[str, ...] = ("exposure", "white_balance", "resolution", "blur", "noise")
"""Effects of the *capture* (camera, light, distance), not of the attack: :func:`simulate_capture`
applies them to bona fide and attack images alike, so that a model cannot learn "dark / blurred /
compressed = attack" (the cue that made real photos from other cameras look like spoofs)."""


def simulate_capture(image: Image, *, seed: int | Sequence[int] = 0, probability: float = 0.35) -> Image:
    """Apply each of :data:`CAPTURE_EFFECTS` with ``probability`` (independently, in that order).

    Examples
    --------
    >>> img = np.full((32, 32, 3), 128, np.uint8)
    >>> simulate_capture(img, seed=1).shape
    (32, 32, 3)
    >>> bool((simulate_capture(img, probability=0.0) == img).all())
    True
    """
    image = _check(image)
    if not 0.0 <= probability <= 1.0:
        raise InvalidArgumentError(f"probability must be in [0, 1], got {probability}")
    rng = np.random.default_rng(seed if isinstance(seed, int) else list(seed))
    out = image
    for name in CAPTURE_EFFECTS:
        if rng.random() < probability:
            out = get_effect(name)(out, rng)
    return out if out is not image else image.copy()


ATTACK_KINDS: dict[str, tuple[str, ...]] = {
    "print": ("gamut", "halftone", "paper", "glare", "bend", "blur", "noise"),
    "replay": ("moire", "cast", "banding", "bezel", "glare", "blur", "noise"),
}
"""The effects of each attack kind, in the order they are applied."""

EFFECT_PROBABILITY: dict[str, float] = {"glare": 0.5, "bend": 0.7, "bezel": 0.5, "blur": 0.8}
"""Effects applied only with this probability by :func:`simulate_attack` (the others always)."""


def get_effect(name: str) -> Effect:
    """The effect registered as ``name``; :class:`~faceprint.errors.UnknownBackendError` lists the valid ones."""
    fn: Effect = ATTACK_EFFECTS.factory(name)
    return fn


def simulate_attack(
    image: Image,
    kind: str,
    *,
    seed: int | Sequence[int] = 0,
    effects: Sequence[str] | None = None,
    always: bool = False,
) -> Image:
    """Turn a bona fide RGB uint8 image into a simulated ``"print"`` or ``"replay"`` attack.

    Parameters
    ----------
    image : array (h, w, 3) uint8
        The bona fide image (a face crop with some context works best).
    kind : {"print", "replay"}
    seed : int or sequence of int
        Seeds the effects' :class:`numpy.random.Generator` (e.g. ``(base_seed, image_index)``).
    effects : sequence of str, optional
        A subset of the kind's effects to apply (in the kind's order); default all of them.
        Used to measure what each effect adds.
    always : bool
        Apply every selected effect, ignoring :data:`EFFECT_PROBABILITY`.
    """
    image = _check(image)
    if kind not in ATTACK_KINDS:
        raise InvalidArgumentError(f"unknown attack kind {kind!r}; valid: {', '.join(sorted(ATTACK_KINDS))}")
    chosen = ATTACK_KINDS[kind]
    if effects is not None:
        unknown = set(effects) - set(chosen)
        if unknown:
            raise InvalidArgumentError(f"effects {sorted(unknown)} are not {kind} effects; valid: {', '.join(chosen)}")
        chosen = tuple(e for e in chosen if e in set(effects))
    rng = np.random.default_rng(seed if isinstance(seed, int) else list(seed))
    out = image
    for name in chosen:
        apply = rng.random() < EFFECT_PROBABILITY.get(name, 1.0)
        if apply or always:
            out = get_effect(name)(out, rng)
    return out if out is not image else image.copy()


def high_frequency_energy(image: Image, *, cutoff: float = 0.25) -> float:
    """Share of the grey image's spectral energy (DC excluded) above ``cutoff`` x the Nyquist radius."""
    g = cv2.cvtColor(_check(image), cv2.COLOR_RGB2GRAY).astype(np.float64)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean()))) ** 2
    h, w = g.shape
    fy = (np.arange(h) - h // 2) / (h / 2)
    fx = (np.arange(w) - w // 2) / (w / 2)
    r = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    total = float(spec.sum())
    return float(spec[r > cutoff].sum() / total) if total > 0 else 0.0
