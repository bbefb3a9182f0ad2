"""Tests for faceprint.alignment: the similarity fit against a closed-form reference, and the warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceprint.alignment import ARCFACE_TEMPLATE_112, align, scaled_template, similarity_transform
from faceprint.errors import InvalidImageError
from faceprint.types import Detection

TEMPLATE = np.array(ARCFACE_TEMPLATE_112, np.float64)


def similarity_matrix(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Closed-form least-squares similarity (Umeyama 1991), no reflections: the reference."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / n
    u, sig, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sig) @ d) / ((xs**2).sum() / n)
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def test_umeyama_reference_is_least_squares() -> None:
    # brute-force check of the reference itself: no small perturbation of its parameters does better
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    dst = apply(similarity_matrix(10, 1.3, 5, -7), src) + rng.normal(0, 2, (5, 2))
    m = umeyama(src, dst)
    a, b, tx, ty = m[0, 0], m[1, 0], m[0, 2], m[1, 2]

    def err(p: np.ndarray) -> float:
        mm = np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]]])
        return float(((apply(mm, src) - dst) ** 2).sum())

    best = err(np.array([a, b, tx, ty]))
    for step in rng.normal(0, 1e-3, (200, 4)):
        assert err(np.array([a, b, tx, ty]) + step) >= best - 1e-9


def test_recovers_known_transform_exactly() -> None:
    for angle, scale, tx, ty in [(0, 1, 0, 0), (17, 1.7, 12.5, -30), (-40, 0.35, 200, 80), (90, 2.0, -5, 5)]:
        truth = similarity_matrix(angle, scale, tx, ty)
        got = similarity_transform(TEMPLATE, apply(truth, TEMPLATE))
        assert got.shape == (2, 3)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, truth, atol=1e-3)


@pytest.mark.parametrize("seed", range(5))
def test_matches_umeyama_on_noisy_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    src = TEMPLATE * rng.uniform(0.5, 3) + rng.uniform(-50, 200, 2)
    truth = similarity_matrix(rng.uniform(-60, 60), rng.uniform(0.3, 2.5), *rng.uniform(-30, 30, 2))
    dst = apply(truth, src) + rng.normal(0, 3, src.shape)
    got = similarity_transform(src, dst)
    want = umeyama(src, dst)
    np.testing.assert_allclose(got, want, atol=1e-3)
    # and therefore the same residual as the optimum
    np.testing.assert_allclose(
        ((apply(got, src) - dst) ** 2).sum(), ((apply(want, src) - dst) ** 2).sum(), rtol=1e-4
    )


def test_two_points_suffice() -> None:
    src = np.array([[0.0, 0.0], [10.0, 0.0]])
    dst = np.array([[5.0, 5.0], [5.0, 25.0]])  # rotate 90, scale 2, shift
    np.testing.assert_allclose(similarity_transform(src, dst), similarity_matrix(90, 2, 5, 5), atol=1e-3)


@pytest.mark.parametrize(
    "src",
    [
        np.ones((5, 2)),  # all points coincide
        np.ones((1, 2)),  # a single point
        np.zeros((4, 2)),  # count differs from the template
        np.zeros((5, 3)),
    ],
    ids=["degenerate", "one-point", "count-mismatch", "5x3"],
)
def test_bad_landmarks_raise(src: np.ndarray) -> None:
    dst = TEMPLATE[: len(src)] if src.shape == (1, 2) else TEMPLATE
    with pytest.raises(ValueError):
        similarity_transform(src, dst)


def test_transposed_landmarks_raise() -> None:
    # (2, 5) is the classic x-row / y-row mistake; it must not be silently re-read as (5, 2).
    src = TEMPLATE.T + 3.0
    with pytest.raises(ValueError):
        similarity_transform(src, TEMPLATE)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_landmarks_raise(bad: float) -> None:
    src = TEMPLATE.copy()
    src[2, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        similarity_transform(src, TEMPLATE)
    with pytest.raises(ValueError):
        similarity_transform(TEMPLATE, src)


# -- align ----------------------------------------------------------------------------------
@pytest.fixture
def pattern() -> np.ndarray:
    """A smooth 112x112 RGB pattern (smooth so that bilinear resampling is nearly exact)."""
    y, x = np.mgrid[0:112, 0:112].astype(np.float64)
    img = np.stack(
        [
            127.5 + 127.5 * np.sin(x / 9.0),
            127.5 + 127.5 * np.cos(y / 11.0),
            (x + y) * 255.0 / 222.0,
        ],
        axis=-1,
    )
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def test_align_shape_and_dtype(pattern: np.ndarray) -> None:
    big = cv2.resize(pattern, (300, 250))
    out = align(big, TEMPLATE * 2 + 20)
    assert out.shape == (112, 112, 3)
    assert out.dtype == np.uint8
    out = align(big, TEMPLATE * 2 + 20, scaled_template(TEMPLATE, 112, 160), size=(160, 160))
    assert out.shape == (160, 160, 3)
    out = align(big, TEMPLATE, size=(96, 112))  # size is (w, h)
    assert out.shape == (112, 96, 3)


def test_align_identity(pattern: np.ndarray) -> None:
    out = align(pattern, TEMPLATE)
    assert np.abs(out.astype(int) - pattern.astype(int)).max() <= 1


def test_align_accepts_detection(pattern: np.ndarray) -> None:
    det = Detection(box=(0.0, 0.0, 112.0, 112.0), score=1.0, landmarks=TEMPLATE.astype(np.float32))
    np.testing.assert_array_equal(align(pattern, det), align(pattern, TEMPLATE))


def test_align_undoes_a_known_warp(pattern: np.ndarray) -> None:
    # Put the face into a bigger image with a known rotation + scale + shift, and align it back.
    forward = similarity_matrix(25, 1.8, 120, 40)
    big = cv2.warpAffine(pattern, forward, (400, 360), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    landmarks = apply(forward, TEMPLATE)
    out = align(big, landmarks)
    diff = np.abs(out.astype(int) - pattern.astype(int))[8:-8, 8:-8]
    assert diff.mean() < 2.0
    assert diff.max() < 20


def test_align_bad_inputs(pattern: np.ndarray) -> None:
    with pytest.raises(InvalidImageError):
        align(pattern.astype(np.float32), TEMPLATE)
    with pytest.raises(InvalidImageError):
        align(pattern[..., 0], TEMPLATE)
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        align(pattern, TEMPLATE[:4])
    with pytest.raises(ValueError):
        align(pattern, np.full((5, 2), np.nan))


# -- scaled_template ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [112, 160, 224, 56])
def test_scaled_template_plain_rescale(size: int) -> None:
    got = np.array(scaled_template(ARCFACE_TEMPLATE_112, 112, size))
    np.testing.assert_allclose(got, TEMPLATE * size / 112, atol=1e-9)


def test_scaled_template_zoom_and_shift() -> None:
    centre = np.array([56.0, 56.0])
    zoomed = np.array(scaled_template(ARCFACE_TEMPLATE_112, 112, 112, zoom=0.5))
    np.testing.assert_allclose(zoomed - centre, (TEMPLATE - centre) * 0.5, atol=1e-9)
    shifted = np.array(scaled_template(ARCFACE_TEMPLATE_112, 112, 200, shift_y=0.1))
    np.testing.assert_allclose(shifted, TEMPLATE * 200 / 112 + [0.0, 20.0], atol=1e-9)
