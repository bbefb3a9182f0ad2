"""Tests for faceprint.processing: augmentations, normalisations, the step registry and the augmenter."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint.alignment import ARCFACE_TEMPLATE_112, align
from faceprint.detection import Detector, select_faces
from faceprint.embedding import Embedder, l2_normalize
from faceprint.errors import InvalidImageError
from faceprint.io import load_image
from faceprint.processing import (
    AUGMENTER_PRESETS,
    PROCESSORS,
    Augmenter,
    Chain,
    ViewParams,
    augment_embeddings,
    blur,
    center_nose,
    clahe,
    compose,
    crop_landmarks,
    downsample,
    estimate_yaw,
    flip,
    flip_landmarks,
    gamma_correct,
    geometric_jitter,
    get_processor,
    histogram_equalize,
    jitter_template,
    jpeg,
    occlude,
    occlusion_mask,
    photometric,
    retinex_msr,
    symmetrize,
    synth_yaw,
)
from faceprint.types import Detection

TEMPLATE = np.array(ARCFACE_TEMPLATE_112, np.float32)


def face_like(size: int = 112, seed: int = 0) -> np.ndarray:
    """A textured RGB image (smooth blobs + noise) so every operation has something to change."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-10, 11, img.shape, dtype=np.int16)
    return np.clip(img, 0, 255).astype(np.uint8)


def low_contrast(size: int = 112) -> np.ndarray:
    """A dim, flat image: grey levels 100..130 with texture."""
    img = face_like(size).astype(np.float32)
    return (100 + 30 * (img - img.min()) / (img.max() - img.min())).astype(np.uint8)


def grey_std(img: np.ndarray) -> float:
    return float(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).std())


def scene_with_face(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 220 x 200 image and landmarks: the template moved, scaled and slightly rotated."""
    img = face_like(256, seed)[:220, :200].copy()
    a = np.deg2rad(8.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (TEMPLATE - 56.0) @ rot.T * 1.3 + np.array([100.0, 105.0])
    return img, pts.astype(np.float32)


CROP_OPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "flip": flip,
    "photometric": lambda c: photometric(
        c, brightness=10, contrast=1.2, gamma=0.8, saturation=1.3, gains=(1.1, 1.0, 0.9)
    ),
    "synth_yaw": lambda c: synth_yaw(c, 15.0),
    "occlude": lambda c: occlude(c, TEMPLATE, "mask"),
    "blur": lambda c: blur(c, 1.5),
    "downsample": lambda c: downsample(c, 3.0),
    "jpeg": lambda c: jpeg(c, 20),
    "clahe": clahe,
    "retinex": retinex_msr,
    "gamma": lambda c: gamma_correct(c, 0.8),
    "histeq": histogram_equalize,
    "symmetrize": lambda c: symmetrize(c, TEMPLATE, threshold=-1.0),
    "center_nose": lambda c: center_nose(c, TEMPLATE + np.array([[0, 0], [0, 0], [6, 0], [0, 0], [0, 0]])),
}


# -- shapes, dtypes, bad input ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CROP_OPS))
def test_shape_and_dtype_preserved_and_input_untouched(name: str) -> None:
    crop = face_like()
    before = crop.copy()
    out = CROP_OPS[name](crop)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert not np.array_equal(out, crop), f"{name} changed nothing on a textured image"
    assert np.array_equal(crop, before), f"{name} modified its input in place"


@pytest.mark.parametrize("name", sorted(CROP_OPS))
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((112, 112), np.uint8),
        np.zeros((112, 112, 4), np.uint8),
        np.zeros((112, 112, 3), np.float32),
        [[[0, 0, 0]]],
    ],
    ids=["2d", "rgba", "float", "list"],
)
def test_bad_input_raises_invalid_image(name: str, bad: object) -> None:
    with pytest.raises(InvalidImageError):
        CROP_OPS[name](bad)  # type: ignore[arg-type]


def test_bad_input_for_alignment_level_functions() -> None:
    with pytest.raises(InvalidImageError):
        geometric_jitter(np.zeros((50, 50), np.uint8), TEMPLATE)
    with pytest.raises(InvalidImageError):
        Augmenter().views(np.zeros((50, 50, 3), np.int32), TEMPLATE, n=1)
    with pytest.raises(ValueError, match="landmarks"):
        geometric_jitter(face_like(), np.zeros((4, 2)))


def test_bad_parameters_raise_value_error() -> None:
    crop = face_like()
    with pytest.raises(ValueError):
        photometric(crop, contrast=0.0)
    with pytest.raises(ValueError):
        jpeg(crop, 0)
    with pytest.raises(ValueError):
        blur(crop, -1.0)
    with pytest.raises(ValueError, match="unknown occlusion kind"):
        occlude(crop, TEMPLATE, "hat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="probability"):
        Augmenter(flip=1.5)
    with pytest.raises(ValueError, match="unknown augmenter preset"):
        Augmenter.preset("nope")


# -- individual operations ----------------------------------------------------------------------


def test_flip_twice_is_identity_and_flips_landmarks_consistently() -> None:
    crop = face_like()
    assert np.array_equal(flip(flip(crop)), crop)
    assert np.array_equal(flip(crop), crop[:, ::-1])
    lm = flip_landmarks(TEMPLATE, 112)
    assert np.allclose(flip_landmarks(lm, 112), TEMPLATE)
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # still image-left first


def test_photometric_defaults_are_identity_and_brightness_adds() -> None:
    crop = face_like()
    assert np.array_equal(photometric(crop), crop)
    flat = np.full((8, 8, 3), 100, np.uint8)
    assert np.all(photometric(flat, brightness=20) == 120)
    assert np.all(photometric(flat, contrast=2.0) == 100)  # contrast pivots on the mean
    assert np.all(photometric(np.full((4, 4, 3), 250, np.uint8), brightness=20) == 255)  # saturates


@pytest.mark.parametrize("kind", ["band", "mask", "sunglasses"])
def test_occlusion_changes_only_its_region(kind: str) -> None:
    crop = np.full((112, 112, 3), 200, np.uint8)
    crop[::7] = 90  # texture, so a fill of (0, 0, 0) changes every covered pixel
    mask = occlusion_mask(crop.shape, TEMPLATE, kind)  # type: ignore[arg-type]
    out = occlude(crop, TEMPLATE, kind, fill=(0, 0, 0))  # type: ignore[arg-type]
    changed = np.any(out != crop, axis=2)
    assert np.array_equal(changed, mask)
    assert 0.02 < mask.mean() < 0.6

    def covers(i: int) -> bool:
        x, y = np.round(TEMPLATE[i]).astype(int)
        return bool(mask[y, x])

    if kind == "sunglasses":
        assert covers(0) and covers(1) and not covers(2) and not covers(3) and not covers(4)
    elif kind == "mask":
        assert not covers(0) and not covers(1) and covers(2) and covers(3) and covers(4)
    else:  # band at the eye line
        assert covers(0) and covers(1) and not covers(3) and not covers(4)
        assert mask[52, 0] and mask[52, 111]  # spans the whole width
        low = occlusion_mask(crop.shape, TEMPLATE, "band", position=1.0)
        assert low[92, 41] and not low[52, 38]


def test_occlusion_follows_the_landmarks() -> None:
    shifted = TEMPLATE + np.array([10.0, 5.0], np.float32)
    a = occlusion_mask((112, 112), TEMPLATE, "sunglasses")
    b = occlusion_mask((112, 112), shifted, "sunglasses")
    assert np.array_equal(a[:-5, :-10], b[5:, 10:])


def test_blur_jpeg_downsample_are_mild_on_smooth_images() -> None:
    crop = face_like()
    for out in (blur(crop, 1.0), jpeg(crop, 50), downsample(crop, 2.0)):
        assert np.abs(out.astype(int) - crop).mean() < 12
    assert np.array_equal(blur(crop, 0.0), crop)


def test_synth_yaw_zero_is_identity_and_positive_moves_right() -> None:
    img = np.zeros((112, 112, 3), np.uint8)
    img[:, 50:62] = 255  # a vertical bar at the centre
    assert np.array_equal(synth_yaw(img, 0.0), img)
    cols = np.flatnonzero(synth_yaw(img, 20.0)[56, :, 0] > 128)
    assert cols.mean() > 60


def test_clahe_and_retinex_raise_contrast_of_a_flat_image() -> None:
    flat = low_contrast()
    for f in (clahe, retinex_msr, histogram_equalize):
        out = f(flat)
        assert out.dtype == np.uint8 and out.min() >= 0 and out.max() <= 255
        assert grey_std(out) > 1.5 * grey_std(flat), f.__name__


def test_retinex_evens_out_a_lighting_gradient() -> None:
    # a texture lit from the left: retinex should flatten the left/right mean difference
    tex = face_like().astype(np.float32)
    light = np.linspace(1.0, 0.25, 112, dtype=np.float32)[None, :, None]
    lit = np.clip(tex * light, 0, 255).astype(np.uint8)
    out = retinex_msr(lit)

    def imbalance(img: np.ndarray) -> float:
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(float)
        return abs(g[:, :40].mean() - g[:, -40:].mean()) / max(g.mean(), 1.0)

    assert imbalance(out) < 0.5 * imbalance(lit)


def test_gamma_auto_brightens_dark_and_darkens_bright() -> None:
    dark = (face_like() // 4).astype(np.uint8)
    bright = (255 - face_like() // 4).astype(np.uint8)
    assert gamma_correct(dark).mean() > dark.mean() + 20
    assert gamma_correct(bright).mean() < bright.mean() - 20
    assert np.array_equal(gamma_correct(dark, 1.0), dark)


def test_estimate_yaw_sign_and_similarity_invariance() -> None:
    assert abs(estimate_yaw(TEMPLATE)) < 0.01
    right = TEMPLATE.copy()
    right[2, 0] += 7.0
    left = TEMPLATE.copy()
    left[2, 0] -= 7.0
    assert estimate_yaw(right) > 0.15 and estimate_yaw(left) < -0.15
    m = cv2.getRotationMatrix2D((30.0, 40.0), 25.0, 1.7)
    moved = cv2.transform(right[None].astype(np.float64), m)[0]
    assert estimate_yaw(moved) == pytest.approx(estimate_yaw(right), abs=1e-6)


def test_symmetrize_keeps_frontal_faces_and_mirrors_the_visible_half() -> None:
    crop = face_like()
    assert np.array_equal(symmetrize(crop, TEMPLATE), crop)  # frontal: below the threshold
    lm = TEMPLATE.copy()
    lm[2, 0] += 8.0  # nose toward image-right: the image-left half is the visible one
    out = symmetrize(crop, lm)
    mid = int(round((lm[0, 0] + lm[1, 0]) / 2))
    assert np.array_equal(out[:, : mid - 1], crop[:, : mid - 1])
    # right of the midline is the mirror of the left: columns mid + d ~ mid - d
    d = np.arange(3, 40)
    mid_f = (lm[0, 0] + lm[1, 0]) / 2
    left_cols = np.round(mid_f - d).astype(int)
    right_cols = np.round(mid_f + d).astype(int)
    diff = np.abs(out[:, right_cols].astype(int) - out[:, left_cols].astype(int)).mean()
    assert diff < 6


def test_center_nose_moves_the_nose_column_to_the_midline() -> None:
    img = np.zeros((112, 112, 3), np.uint8)
    lm = TEMPLATE.copy()
    lm[2, 0] = 64.0
    img[:, 63:66] = 255  # a bright column at the nose
    out = center_nose(img, lm)
    cols = np.flatnonzero(out[60, :, 0] > 128)
    mid = (lm[0, 0] + lm[1, 0]) / 2
    assert abs(cols.mean() - mid) < 1.5
    assert np.array_equal(out[:, :30], img[:, :30])  # outside the eyes nothing moves


# -- alignment-level jitter ----------------------------------------------------------------------


def test_geometric_jitter_with_zero_amplitude_equals_plain_alignment() -> None:
    img, pts = scene_with_face()
    plain = align(img, pts)
    assert np.array_equal(geometric_jitter(img, pts), plain)
    det = Detection(box=(0, 0, 200, 200), score=1.0, landmarks=pts)
    assert np.array_equal(geometric_jitter(img, det, rotation=0.0, scale=1.0, shift=(0.0, 0.0)), plain)
    assert not np.array_equal(geometric_jitter(img, pts, rotation=5.0), plain)
    views = Augmenter().views(img, det, n=2)
    assert all(np.array_equal(v, plain) for v in views)


def test_jitter_template_moves_the_face_as_asked() -> None:
    tpl = np.array(jitter_template(rotation=0.0, scale=1.2, shift=(0.1, 0.0)))
    iod = np.linalg.norm(tpl[1] - tpl[0])
    assert iod == pytest.approx(1.2 * np.linalg.norm(TEMPLATE[1] - TEMPLATE[0]), rel=1e-6)
    rot_tpl = jitter_template(rotation=10.0)
    rot = np.array(rot_tpl)
    v = rot[1] - rot[0]
    assert abs(abs(np.degrees(np.arctan2(v[1], v[0]))) - 10.0) < 0.5
    # what the crop landmarks of a jittered alignment are: the jittered template
    img, pts = scene_with_face()
    assert np.allclose(crop_landmarks(pts, rot_tpl), rot, atol=0.05)


# -- registry and chains -----------------------------------------------------------------------


def test_registry_names_and_errors() -> None:
    assert {"clahe", "retinex", "gamma", "histeq", "symmetrize", "center_nose", "flip"} <= set(PROCESSORS.names())
    with pytest.raises(ValueError, match="valid names"):
        get_processor("frontalize3d")
    crop = face_like()
    assert np.array_equal(get_processor("clahe")(crop), clahe(crop))
    assert np.array_equal(get_processor("gamma", gamma=0.5)(crop), gamma_correct(crop, 0.5))
    with pytest.raises(ValueError, match="needs the crop's landmarks"):
        get_processor("symmetrize")(crop)


def test_compose_applies_steps_in_order() -> None:
    crop = face_like()
    chain = compose("clahe", get_processor("gamma", gamma=0.7))
    assert isinstance(chain, Chain) and chain.name == "clahe+gamma"
    assert np.array_equal(chain(crop), gamma_correct(clahe(crop), 0.7))
    assert np.array_equal(compose()(crop), crop)


# -- the augmenter -----------------------------------------------------------------------------


def test_augmenter_is_deterministic_per_seed() -> None:
    img, pts = scene_with_face()
    a = Augmenter.preset("mixed", seed=3).views(img, pts, n=5)
    b = Augmenter.preset("mixed", seed=3).views(img, pts, n=5)
    c = Augmenter.preset("mixed", seed=4).views(img, pts, n=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert len({v.tobytes() for v in a}) == 5  # views differ from each other


@pytest.mark.parametrize("name", sorted(AUGMENTER_PRESETS))
def test_every_preset_produces_valid_changed_views(name: str) -> None:
    img, pts = scene_with_face()
    plain = align(img, pts)
    views = Augmenter.preset(name).views(img, pts, n=3)
    assert len(views) == 3
    for v in views:
        assert v.shape == (112, 112, 3) and v.dtype == np.uint8
        assert not np.array_equal(v, plain)


def test_view_params_identity_gives_plain_crop() -> None:
    img, pts = scene_with_face()
    assert np.array_equal(Augmenter().apply(img, pts, ViewParams()), align(img, pts))


class _CropEmbedder:
    """Mean colour of the central region -> 4-d unit vector (enough to check the reduction)."""

    template = ARCFACE_TEMPLATE_112
    input_size = (112, 112)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        c = np.asarray(crops)[:, 30:80, 30:80].reshape(len(crops), -1, 3).mean(axis=1) / 255.0
        return l2_normalize(np.hstack([c, np.ones((len(crops), 1))]))


def test_augment_embeddings_mean_and_all_views() -> None:
    img, pts = scene_with_face()
    emb = _CropEmbedder()
    aug = Augmenter.preset("photometric", seed=1)
    every = augment_embeddings(img, pts, emb, aug, 4, reduce="none")
    assert every.shape == (5, 4)
    assert np.allclose(every[0], emb.embed(align(img, pts)[None])[0])
    tpl = augment_embeddings(img, pts, emb, aug, 4)
    assert tpl.shape == (4,) and np.isclose(np.linalg.norm(tpl), 1.0)
    assert np.allclose(tpl, l2_normalize(every.mean(axis=0)), atol=1e-6)
    only_views = augment_embeddings(img, pts, emb, aug, 4, include_original=False, reduce="none")
    assert np.allclose(only_views, every[1:])
    with pytest.raises(TypeError):
        augment_embeddings(img, pts, object(), aug, 2)


# -- real data -----------------------------------------------------------------------------------


@pytest.mark.real
@pytest.mark.data
def test_mild_augmentations_of_an_lfw_face_embed_close_to_the_original(
    lfw_image: Callable[[str, int], Path], yunet: Detector, sface: Embedder
) -> None:
    t0 = time.time()
    img = load_image(lfw_image("Colin_Powell", 1))
    faces = select_faces(yunet.detect(img), img.shape, "central")
    assert faces, "YuNet found no face in Colin_Powell_0001"
    det = faces[0]
    crop = sface.align(img, det)  # type: ignore[attr-defined]
    ref = sface.embed(crop[None])[0]  # type: ignore[attr-defined]
    lm = crop_landmarks(det)
    mild = {
        "flip": flip(crop),
        "photometric": photometric(crop, brightness=15, contrast=1.15, gamma=0.85, gains=(1.05, 1.0, 0.95)),
        "geometric": geometric_jitter(img, det, rotation=5.0, scale=1.05, shift=(0.02, -0.02)),
        "blur": blur(crop, 1.0),
        "jpeg": jpeg(crop, 40),
        "sunglasses": occlude(crop, lm, "sunglasses", fill=(30, 30, 30)),
        "clahe": clahe(crop),
    }
    embs = sface.embed(np.stack(list(mild.values())))  # type: ignore[attr-defined]
    sims = dict(zip(mild, (embs @ ref).tolist()))
    assert all(s > 0.5 for s in sims.values()), sims
    # and the mean-of-views template stays closest to the original identity
    tpl = augment_embeddings(img, det, sface, Augmenter.preset("mixed", seed=0), 4)
    assert float(tpl @ ref) > 0.8
    # another person is far from all of it
    other = load_image(lfw_image("George_W_Bush", 1))
    odet = select_faces(yunet.detect(other), other.shape, "central")[0]
    oemb = sface.embed(sface.align(other, odet)[None])[0]  # type: ignore[attr-defined]
    assert float(tpl @ oemb) < 0.5
    assert time.time() - t0 < 20
