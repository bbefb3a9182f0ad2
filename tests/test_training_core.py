"""Triplet loss, miners, P x K sampler, networks and trainer, checked against brute force and pml."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if TYPE_CHECKING:
    from torch import Tensor

from faceprint.training import (  # noqa: E402
    MINERS,
    AdaptationHead,
    BatchAllTripletMiner,
    BatchHardTripletMiner,
    CompactFaceNet,
    EnsembleNet,
    EpochInfo,
    History,
    PKSampler,
    RandomTripletMiner,
    SemiHardTripletMiner,
    StepInfo,
    TrainConfig,
    Trainer,
    TripletLoss,
    evaluate_embeddings,
    get_miner,
    plot_history,
    to_tensor,
    triplet_loss,
)

torch.set_num_threads(1)


# -- brute force -------------------------------------------------------------------------------
def _d2(e: list[list[float]], i: int, j: int) -> float:
    return sum((a - b) ** 2 for a, b in zip(e[i], e[j], strict=True))


def _valid(labels: list[int]) -> list[tuple[int, int, int]]:
    n = len(labels)
    return [
        (a, p, q)
        for a, p, q in itertools.product(range(n), repeat=3)
        if a != p and labels[a] == labels[p] and labels[q] != labels[a]
    ]


def _triplets(t: tuple[Tensor, Tensor, Tensor]) -> list[tuple[int, int, int]]:
    a, p, n = (x.tolist() for x in t)
    assert len(a) == len(p) == len(n)
    return list(zip(a, p, n, strict=True))


def _unit(rng: np.random.Generator, n: int, d: int) -> Tensor:
    x = rng.normal(size=(n, d))
    return torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True))  # float64: no rounding near-ties


# a batch whose squared distances are exact binary fractions with ties (1-D points)
TIE_EMB = torch.tensor([[0.0], [0.5], [0.75], [1.0], [0.5], [1.0]], dtype=torch.float64)
TIE_LABELS = [0, 0, 1, 1, 2, 0]
LABEL_SETS = [
    [0, 0, 1, 1, 2, 2, 0, 1],
    [0, 0, 0, 1, 2, 3],  # singletons 1, 2, 3: negatives only
    [5, 5, 5, 5],  # one identity: no negatives
    [0, 1, 2, 3],  # singletons only: no positives
]


# -- loss --------------------------------------------------------------------------------------
def test_triplet_loss_matches_loop() -> None:
    rng = np.random.default_rng(0)
    a, p, n = (torch.from_numpy(rng.normal(size=(7, 5))) for _ in range(3))
    loop = 0.0
    for i in range(7):
        d_ap = sum((x - y) ** 2 for x, y in zip(a[i].tolist(), p[i].tolist(), strict=True))
        d_an = sum((x - y) ** 2 for x, y in zip(a[i].tolist(), n[i].tolist(), strict=True))
        loop += max(d_ap - d_an + 0.3, 0.0)
    assert float(triplet_loss(a, p, n, margin=0.3)) == pytest.approx(loop / 7, rel=1e-12)
    assert 0 < loop / 7  # some rows active, so the check is not 0 == 0


def test_triplet_loss_zero_triplets_has_grad() -> None:
    e = torch.zeros(0, 4, requires_grad=True)
    loss = triplet_loss(e, e, e)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert e.grad is not None and e.grad.shape == (0, 4)


def test_triplet_loss_bad_input() -> None:
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="one shape"):
        triplet_loss(x, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="margin"):
        triplet_loss(x, x, x, margin=-1.0)


@pytest.mark.parametrize("miner", ["batch-all", "semi-hard", "batch-hard"])
def test_triplet_loss_module_matches_pml(miner: str) -> None:
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.reducers import MeanReducer

    del pml
    # pml's TripletMarginLoss is relu(d_ap - d_an + margin) over the given triplets. Matched semantics:
    # LpDistance(power=2) = squared Euclidean on L2-normalised embeddings (pml's default is power=1, the plain
    # distance), MeanReducer = mean over all given triplets (the default AvgNonZeroReducer averages only the
    # non-zero ones), and our miner's triplets passed as indices_tuple.
    rng = np.random.default_rng(1)
    emb = torch.from_numpy(rng.normal(size=(12, 6))).requires_grad_(True)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    ours, stats = TripletLoss(margin=0.3, miner=miner)(emb, labels)
    triplets = get_miner(miner)(torch.nn.functional.normalize(emb.detach(), dim=1), labels, 0.3)
    ref = TripletMarginLoss(margin=0.3, distance=LpDistance(power=2), reducer=MeanReducer())(
        emb, labels, indices_tuple=triplets
    )
    assert stats.n_triplets == len(triplets[0]) > 0
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-9)
    g_ours = torch.autograd.grad(ours, emb)[0]
    g_ref = torch.autograd.grad(
        TripletMarginLoss(margin=0.3, distance=LpDistance(power=2), reducer=MeanReducer())(
            emb, labels, indices_tuple=triplets
        ),
        emb,
    )[0]
    assert torch.allclose(g_ours, g_ref, atol=1e-9)


def test_triplet_loss_module_stats() -> None:
    rng = np.random.default_rng(2)
    emb = _unit(rng, 8, 3)
    labels = torch.tensor(LABEL_SETS[0])
    e = emb.tolist()
    valid = _valid(LABEL_SETS[0])
    active = [t for t in valid if _d2(e, t[0], t[1]) - _d2(e, t[0], t[2]) + 0.2 > 0]
    loss, stats = TripletLoss(margin=0.2, miner="batch-all")(emb, labels)
    assert (stats.n_valid, stats.n_valid_active) == (len(valid), len(active))
    assert stats.n_triplets == stats.n_active == len(active) and stats.fraction_active == 1.0
    assert float(loss.detach()) == pytest.approx(
        np.mean([_d2(e, a, p) - _d2(e, a, n) + 0.2 for a, p, n in active]), rel=1e-9
    )
    _, hard = TripletLoss(margin=0.2, miner="batch-hard")(emb, labels)
    assert hard.n_triplets == 8 and 0 <= hard.n_active <= 8
    assert hard.fraction_active == hard.n_active / 8
    with pytest.raises(ValueError, match="labels"):
        TripletLoss()(emb, labels[:3])


def test_triplet_loss_module_normalises() -> None:
    emb = torch.tensor([[3.0, 0.0], [0.0, 2.0], [5.0, 0.1]], requires_grad=True)
    loss, stats = TripletLoss(margin=0.2, miner="batch-all")(emb, torch.tensor([0, 0, 1]))
    # unit vectors: d_ap = 2, d_an(0, 2) ~ 0, d_an(1, 2) ~ 2 - 2 * 0.02 -> both active
    assert stats.n_triplets == 2
    assert float(loss.detach()) > 1.0
    loss.backward()
    assert torch.isfinite(emb.grad).all()


# -- miners vs brute force ---------------------------------------------------------------------
def _brute_batch_all(e: list[list[float]], labels: list[int], m: float) -> set[tuple[int, int, int]]:
    return {(a, p, n) for a, p, n in _valid(labels) if _d2(e, a, p) - _d2(e, a, n) + m > 0}


def _brute_batch_hard(e: list[list[float]], labels: list[int]) -> list[tuple[int, int, int]]:
    out = []
    for a in range(len(labels)):
        pos = [i for i in range(len(labels)) if i != a and labels[i] == labels[a]]
        neg = [i for i in range(len(labels)) if labels[i] != labels[a]]
        if not pos or not neg:
            continue
        p = pos[0]
        for i in pos:
            if _d2(e, a, i) > _d2(e, a, p):
                p = i
        n = neg[0]
        for i in neg:
            if _d2(e, a, i) < _d2(e, a, n):
                n = i
        out.append((a, p, n))
    return out


def _brute_semi_hard(e: list[list[float]], labels: list[int], m: float) -> list[tuple[int, int, int]]:
    out = []
    for a, p in itertools.permutations(range(len(labels)), 2):
        if labels[a] != labels[p]:
            continue
        d_ap = _d2(e, a, p)
        best = None
        for n in range(len(labels)):
            if labels[n] != labels[a] and d_ap < _d2(e, a, n) < d_ap + m:
                if best is None or _d2(e, a, n) < _d2(e, a, best):
                    best = n
        if best is not None:
            out.append((a, p, best))
    return out


@pytest.mark.parametrize("labels", LABEL_SETS)
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_miners_match_brute_force_random(labels: list[int], margin: float) -> None:
    rng = np.random.default_rng(len(labels) + int(10 * margin))
    emb = _unit(rng, len(labels), 3)
    e, y = emb.tolist(), torch.tensor(labels)
    assert set(_triplets(BatchAllTripletMiner()(emb, y, margin))) == _brute_batch_all(e, labels, margin)
    assert _triplets(BatchHardTripletMiner()(emb, y, margin)) == _brute_batch_hard(e, labels)
    assert sorted(_triplets(SemiHardTripletMiner()(emb, y, margin))) == sorted(_brute_semi_hard(e, labels, margin))


def test_miners_match_brute_force_with_ties() -> None:
    e, y = TIE_EMB.tolist(), torch.tensor(TIE_LABELS)
    for margin in (0.25, 0.5):
        assert set(_triplets(BatchAllTripletMiner()(TIE_EMB, y, margin))) == _brute_batch_all(e, TIE_LABELS, margin)
        assert _triplets(BatchHardTripletMiner()(TIE_EMB, y, margin)) == _brute_batch_hard(e, TIE_LABELS)
        got = sorted(_triplets(SemiHardTripletMiner()(TIE_EMB, y, margin)))
        assert got == sorted(_brute_semi_hard(e, TIE_LABELS, margin))
    # anchor 1 (0.5): positives 0 and 5 both at 0.25 -> first index; negatives 4 (same point) nearest
    assert _triplets(BatchHardTripletMiner()(TIE_EMB, y, 0.2))[1] == (1, 0, 4)


@pytest.mark.parametrize("labels", [[5, 5, 5, 5], [0, 1, 2, 3], [7]])
def test_miners_no_valid_triplets(labels: list[int]) -> None:
    emb = _unit(np.random.default_rng(0), len(labels), 3)
    for name in MINERS.names():
        a, p, n = get_miner(name)(emb, torch.tensor(labels), 0.2)
        assert a.numel() == p.numel() == n.numel() == 0 and a.dtype == torch.long
    loss, stats = TripletLoss(miner="batch-all")(emb.clone().requires_grad_(True), torch.tensor(labels))
    assert float(loss.detach()) == 0.0 and stats.n_triplets == 0 and stats.fraction_active == 0.0


def test_random_miner() -> None:
    labels = LABEL_SETS[1]
    emb = _unit(np.random.default_rng(3), len(labels), 3)
    valid = set(_valid(labels))
    pairs = {(a, p) for a, p, _ in valid}
    miner = RandomTripletMiner(n_per_anchor=3, seed=5)
    seen: set[tuple[int, int, int]] = set()
    for _ in range(60):
        got = _triplets(miner(emb, torch.tensor(labels), 0.2))
        assert set(got) <= valid
        assert sorted((a, p) for a, p, _ in got) == sorted(list(pairs) * 3)
        seen |= set(got)
    assert seen == valid  # every negative gets drawn
    first = _triplets(RandomTripletMiner(seed=1)(emb, torch.tensor(labels), 0.2))
    assert first == _triplets(RandomTripletMiner(seed=1)(emb, torch.tensor(labels), 0.2))
    with pytest.raises(ValueError, match="n_per_anchor"):
        RandomTripletMiner(n_per_anchor=0)


def test_semi_hard_matches_pml_set() -> None:
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    # pml returns every semi-hard triplet, d_ap < d_an <= d_ap + margin (squared distance with power=2);
    # ours keeps the nearest of them per (a, p). With random floats there is no boundary tie, so the
    # (a, p) pairs must coincide and our negative must be pml's nearest candidate of that pair.
    rng = np.random.default_rng(4)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4])
    emb = _unit(rng, labels.numel(), 4)
    d = torch.cdist(emb, emb) ** 2
    ref = _triplets(
        TripletMarginMiner(margin=0.5, type_of_triplets="semihard", distance=LpDistance(power=2))(emb, labels)
    )
    ours = _triplets(SemiHardTripletMiner()(emb, labels, 0.5))
    assert len(ref) > len(ours) > 0
    by_pair: dict[tuple[int, int], list[int]] = {}
    for a, p, n in ref:
        by_pair.setdefault((a, p), []).append(n)
    assert {(a, p) for a, p, _ in ours} == set(by_pair)
    for a, p, n in ours:
        assert n in by_pair[(a, p)]
        assert float(d[a, n]) == pytest.approx(min(float(d[a, m]) for m in by_pair[(a, p)]))


def test_batch_hard_matches_pml() -> None:
    pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import BatchHardMiner

    rng = np.random.default_rng(5)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    emb = _unit(rng, labels.numel(), 4)
    ref = _triplets(BatchHardMiner(distance=LpDistance(power=2))(emb, labels))
    assert sorted(_triplets(BatchHardTripletMiner()(emb, labels, 0.2))) == sorted(ref)


def test_get_miner_registry() -> None:
    assert MINERS.names() == ["batch-all", "batch-hard", "random", "semi-hard"]
    assert isinstance(get_miner("semi-hard"), SemiHardTripletMiner)
    assert get_miner("random", n_per_anchor=2, seed=0).n_per_anchor == 2  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="batch-all, batch-hard, random, semi-hard"):
        get_miner("hardest")
    with pytest.raises(ValueError, match="valid names"):
        TripletLoss(miner="nope")
    with pytest.raises(ValueError, match="shape"):
        BatchAllTripletMiner()(torch.zeros(4), torch.tensor([0, 0, 1, 1]), 0.2)
    with pytest.raises(ValueError, match="label"):
        SemiHardTripletMiner()(torch.zeros(4, 2), torch.tensor([0, 0, 1]), 0.2)


# -- sampler -----------------------------------------------------------------------------------
def test_pk_sampler_batches() -> None:
    labels = np.array([0] * 6 + [1] * 4 + [2] * 2 + [3] * 9 + [4] * 1 + [5] * 5)
    s = PKSampler(labels, p=3, k=4, batches_per_epoch=50, seed=7)
    assert len(s) == 50
    used: set[int] = set()
    for batch in s:
        assert len(batch) == 12
        ids = labels[batch].reshape(3, 4)
        assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 3  # P distinct identities x K
        assert 4 not in ids  # the singleton is never drawn
        for row in np.asarray(batch).reshape(3, 4):
            n_images = int((labels == labels[row[0]]).sum())
            assert len(set(row)) == min(4, n_images)  # distinct when enough, all of them otherwise
        used |= set(ids[:, 0].tolist())
    assert used == {0, 1, 2, 3, 5}


def test_pk_sampler_deterministic() -> None:
    labels = np.repeat(np.arange(10), 5)
    a = PKSampler(labels, 4, 3, seed=1)
    assert len(a) == 50 // 12
    first = list(a)
    assert first == list(PKSampler(labels, 4, 3, seed=1))
    assert first != list(PKSampler(labels, 4, 3, seed=2))
    a.set_epoch(1)
    second = list(a)
    assert second != first
    b = PKSampler(labels, 4, 3, seed=1)
    b.set_epoch(1)
    assert list(b) == second


@pytest.mark.parametrize(
    ("labels", "p", "k", "match"),
    [
        ([0, 0, 0], 2, 2, "at least 2 identities"),
        ([0, 0, 1, 2], 2, 2, "at least 2 identities"),
        ([0, 0, 1, 1], 3, 2, "p=3 exceeds"),
        ([0, 0, 1, 1], 1, 2, "p must be"),
        ([0, 0, 1, 1], 2, 1, "k must be"),
        ([0.0, 0.0, 1.0, 1.0], 2, 2, "integer labels"),
        ([[0, 0], [1, 1]], 2, 2, "1-D"),
        ([], 2, 2, "1-D"),
    ],
)
def test_pk_sampler_errors(labels: list[int], p: int, k: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PKSampler(labels, p, k)


# -- networks ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("dim", "size"), [(64, 64), (128, 64), (128, 96), (64, 112)])
def test_compact_facenet_shapes(dim: int, size: int) -> None:
    torch.manual_seed(0)
    net = CompactFaceNet(dim=dim, input_size=size).eval()
    crops = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    with torch.no_grad():
        out = net(to_tensor(crops))
    assert out.shape == (3, dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_to_tensor() -> None:
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0] = 255
    t = to_tensor(img)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert float(t[0, 0, 0, 0]) == pytest.approx((255 - 127.5) / 128) and float(t[0, 1, 0, 0]) == pytest.approx(
        -127.5 / 128
    )
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((2, 4, 5), np.uint8))


def test_ensemble_net_is_the_mean_of_member_similarities() -> None:
    torch.manual_seed(0)
    members = [CompactFaceNet(dim=d, input_size=32).eval() for d in (64, 32, 64)]
    ens = EnsembleNet(members).eval()
    assert ens.dim == 160 and ens.input_size == 32
    crops = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        out = ens(to_tensor(crops))
        parts = [m(to_tensor(crops)) for m in members]
    assert out.shape == (4, 160)
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    # concatenation, not a sum: the ensemble's cosine similarity is the members' mean one
    mean_cos = sum(p @ p.T for p in parts) / 3
    assert torch.allclose(out @ out.T, mean_cos, atol=1e-5)
    assert torch.allclose(out[:, 64:96], parts[1] / 3**0.5, atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        EnsembleNet([])
    with pytest.raises(ValueError, match="input_size"):
        EnsembleNet([CompactFaceNet(input_size=32), CompactFaceNet(input_size=64)])
    with pytest.raises(ValueError, match="dim"):
        EnsembleNet([CompactFaceNet(input_size=32), torch.nn.Identity()])


def test_network_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dim"):
        CompactFaceNet(dim=1)
    with pytest.raises(ValueError, match="input_size"):
        CompactFaceNet(input_size=8)
    with pytest.raises(ValueError, match="input"):
        CompactFaceNet()(torch.zeros(2, 1, 64, 64))
    with pytest.raises(ValueError, match="input"):
        AdaptationHead(8)(torch.zeros(2, 7))
    with pytest.raises(ValueError, match="hidden"):
        AdaptationHead(8, hidden=0)


@pytest.mark.parametrize("hidden", [256, None])
def test_adaptation_head_identity_at_init(hidden: int | None) -> None:
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(5, 128), dim=1)
    head = AdaptationHead(128, 128, hidden=hidden)
    assert torch.allclose(head(x), x, atol=1e-6)
    assert torch.allclose(head(3 * x), x, atol=1e-6)  # input normalised first
    proj = AdaptationHead(128, 64, hidden=hidden)(x)  # orthonormal projection: unit rows, not identity
    assert proj.shape == (5, 64) and torch.allclose(proj.norm(dim=1), torch.ones(5), atol=1e-5)
    plain = AdaptationHead(128, 128, residual=False)(x)
    assert not torch.allclose(plain, x, atol=1e-2)


# -- trainer -----------------------------------------------------------------------------------
def _vectors(n_ids: int = 12, per: int = 6, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Identity lives in 4 dimensions, strong nuisance noise in the other 12."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, 4))
    y = np.repeat(np.arange(n_ids), per)
    x = np.concatenate([centres[y] + 0.15 * rng.normal(size=(y.size, 4)), 1.5 * rng.normal(size=(y.size, d - 4))], 1)
    return x.astype(np.float32), y


def _full_batch_loss(trainer: Trainer, x: np.ndarray, y: np.ndarray) -> float:
    emb = torch.from_numpy(trainer.embed(x))
    loss, _ = TripletLoss(margin=0.2, miner="batch-all", normalize=False)(emb, torch.from_numpy(y))
    _, stats = TripletLoss(margin=0.2, miner="batch-all")(emb, torch.from_numpy(y))
    return float(loss) * stats.n_active / stats.n_valid  # mean hinge over all valid triplets


def test_trainer_learns_synthetic_problem() -> None:
    x, y = _vectors()
    vx, vy = _vectors(seed=1)
    torch.manual_seed(0)
    trainer = Trainer(AdaptationHead(16, 16, hidden=None), TrainConfig(miner="batch-hard", epochs=30, lr=3e-2, seed=0))
    before = _full_batch_loss(trainer, x, y)
    val_before = evaluate_embeddings(trainer.embed(vx), vy)["one_shot_accuracy"]
    steps: list[StepInfo] = []
    epochs: list[EpochInfo] = []
    history = trainer.fit(x, y, val_x=vx, val_y=vy, on_step=steps.append, on_epoch=epochs.append)
    after = _full_batch_loss(trainer, x, y)
    assert after < 0.5 * before
    assert len(history.epochs) == 30 and list(history.epochs) == epochs
    assert history.epochs[-1].val is not None
    assert history.epochs[-1].val["one_shot_accuracy"] > val_before + 0.3  # generalises to unseen identities
    assert len(steps) == 30 * (72 // 32) and steps[0].steps == 2
    for s in steps:
        assert 0.0 <= s.fraction_active <= 1.0 and s.n_triplets == 32  # batch-hard: one triplet per anchor
        assert s.fraction_active == s.n_active / s.n_triplets
        assert 0.0 < s.fraction_valid_active <= 1.0


def _image_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (6, 64, 64, 3))
    y = np.repeat(np.arange(6), 4)
    x = np.clip(base[y] + rng.normal(0, 20, (24, 64, 64, 3)), 0, 255).astype(np.uint8)
    return x, y


def test_trainer_checkpoint_resume_equals_straight_run(tmp_path: Path) -> None:
    x, y = _image_data()

    def run(epochs: int, ckpt: Path | None, resume: bool, model: CompactFaceNet) -> History:
        cfg = TrainConfig(miner="semi-hard", epochs=epochs, batch_p=3, batch_k=2, batches_per_epoch=2, margin=0.5)
        return Trainer(model, cfg).fit(x, y, checkpoint=ckpt, resume=resume)

    torch.manual_seed(0)
    init = CompactFaceNet(dim=64, input_size=64, width=8).state_dict()

    def fresh() -> CompactFaceNet:
        m = CompactFaceNet(dim=64, input_size=64, width=8)
        m.load_state_dict(init)
        return m

    straight = fresh()
    h_straight = run(4, None, False, straight)
    ckpt = tmp_path / "run" / "ckpt.pt"
    first = fresh()
    run(2, ckpt, False, first)
    assert ckpt.is_file() and not list(ckpt.parent.glob("*.tmp"))
    resumed = fresh()  # a new process: weights come from the checkpoint
    h_resumed = run(4, ckpt, True, resumed)
    assert [e.epoch for e in h_resumed.epochs] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6, rtol=0)
    assert [e.loss for e in h_resumed.epochs] == pytest.approx([e.loss for e in h_straight.epochs], abs=1e-6)
    assert not all(torch.equal(a, b) for a, b in zip(init.values(), straight.state_dict().values(), strict=True))
    # nothing left to do: history returned unchanged
    assert run(4, ckpt, True, fresh()).epochs == h_resumed.epochs
    with pytest.raises(ValueError, match="margin"):
        Trainer(fresh(), TrainConfig(epochs=5, batch_p=3, batch_k=2, batches_per_epoch=2)).fit(
            x, y, checkpoint=ckpt, resume=True
        )


def test_trainer_is_deterministic_with_two_threads() -> None:
    # batch-all gathers thousands of triplets: without deterministic kernels the backward's parallel
    # scatter-add sums in a varying order with 2 threads and two identical runs drift apart
    x, y = _vectors(n_ids=8, per=8, d=64)

    def run() -> np.ndarray:
        torch.manual_seed(0)
        cfg = TrainConfig(miner="batch-all", epochs=4, batch_p=8, batch_k=8, lr=1e-2, threads=2)
        trainer = Trainer(AdaptationHead(64, 64, hidden=None, residual=False), cfg)
        trainer.fit(x, y)
        return trainer.embed(x)

    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    first = run()
    assert np.array_equal(first, run())
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before  # restored


def test_trainer_bad_input() -> None:
    x, y = _vectors(n_ids=4, per=3)
    trainer = Trainer(AdaptationHead(16, 16), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="one label per sample"):
        trainer.fit(x, y[:-1])
    with pytest.raises(ValueError, match="crops .* or float vectors"):
        trainer.fit(x[:, :, None], y)
    with pytest.raises(ValueError, match="RGB uint8"):
        trainer.fit(np.zeros((12, 64, 64, 3), np.float32), y)
    with pytest.raises(ValueError, match="16-d"):
        trainer.fit(x[:, :8], y)
    with pytest.raises(ValueError, match="at least 2 identities"):
        trainer.fit(x, np.zeros(len(y), int))
    with pytest.raises(ValueError, match="both val_x and val_y"):
        trainer.fit(x, y, val_x=x)
    with pytest.raises(ValueError, match="checkpoint"):
        trainer.fit(x, y, resume=True)
    with pytest.raises(ValueError, match="64x64"):
        Trainer(CompactFaceNet(input_size=64), TrainConfig()).fit(np.zeros((12, 32, 32, 3), np.uint8), y)
    with pytest.raises(ValueError, match="unknown miner 'hard'; valid names: batch-all"):
        TrainConfig(miner="hard")
    with pytest.raises(ValueError, match="batch_k"):
        TrainConfig(batch_k=1)
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="gpu")
    with pytest.raises(TypeError):
        Trainer(object(), TrainConfig())  # type: ignore[arg-type]


def test_trainer_lowers_p_and_embeds_images(tmp_path: Path) -> None:
    x, y = _image_data()
    torch.manual_seed(0)
    trainer = Trainer(CompactFaceNet(dim=64, width=8), TrainConfig(epochs=1, batch_p=8, batch_k=2, batches_per_epoch=1))
    seen: list[StepInfo] = []
    trainer.fit(x, y, on_step=seen.append)
    assert seen[0].n_triplets > 0  # P lowered from 8 to the 6 identities
    emb = trainer.embed(x)
    assert emb.shape == (24, 64) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(emb[:5], trainer.embed(x[:5]), atol=1e-5)  # eval mode: batch-independent
    assert trainer.embed(x[:0]).shape == (0, 64)
    with pytest.raises(ValueError, match="batch_size"):
        trainer.embed(x, batch_size=0)


# -- evaluation and plots ----------------------------------------------------------------------
def test_evaluate_embeddings() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:5]  # orthogonal identities: every threshold between 0.1 and 0.9 separates them
    y = np.repeat(np.arange(5), 4)
    tight = centres[y] + 0.01 * rng.normal(size=(20, 8))
    m = evaluate_embeddings(tight, y)
    assert m["one_shot_accuracy"] == 1.0 and m["verification_accuracy"] == 1.0
    assert m["n_identities"] == 5 and m["n_probes"] == 15 and m["n_pairs"] == 60
    noise = evaluate_embeddings(rng.normal(size=(200, 8)), np.repeat(np.arange(20), 10))
    assert noise["one_shot_accuracy"] < 0.25 and noise["verification_accuracy"] < 0.65
    with pytest.raises(ValueError, match="at least 2 identities"):
        evaluate_embeddings(tight, np.zeros(20, int))
    with pytest.raises(ValueError, match="labels"):
        evaluate_embeddings(tight, y[:3])


def test_plot_history(tmp_path: Path) -> None:
    h = History(
        (
            EpochInfo(1, 0.3, 0.8, {"one_shot_accuracy": 0.5, "verification_accuracy": 0.7}, 1.0, 0.4),
            EpochInfo(2, 0.2, 0.6, {"one_shot_accuracy": 0.6, "verification_accuracy": 0.8}, 1.0, 0.2),
        )
    )
    out = plot_history(h, tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    assert History.from_dict(h.to_dict()) == h


# -- test-time flip ------------------------------------------------------------------------------
def test_embed_flip_is_mirror_invariant() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    torch.manual_seed(0)
    trainer = Trainer(CompactFaceNet(dim=16, input_size=32, width=4), TrainConfig(threads=1))
    plain, mirrored = trainer.embed(x), trainer.embed(x[:, :, ::-1].copy())
    both = trainer.embed(x, flip=True)
    assert both.shape == (6, 16) and both.dtype == np.float32
    assert np.allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    expected = (plain + mirrored) / np.linalg.norm(plain + mirrored, axis=1, keepdims=True)
    assert np.allclose(both, expected, atol=1e-5)
    assert np.allclose(both, trainer.embed(x[:, :, ::-1].copy(), flip=True), atol=1e-5)
    assert not np.allclose(plain, mirrored, atol=1e-3)  # the flip does change a plain embedding
    assert np.array_equal(trainer.embed(x), plain)  # flip defaults to off


def test_embed_flip_needs_images() -> None:
    trainer = Trainer(AdaptationHead(4, 4), TrainConfig())
    with pytest.raises(ValueError, match="flip=True needs image crops"):
        trainer.embed(np.eye(4, dtype=np.float32), flip=True)


# -- centre views (ensemble members on tighter crops) --------------------------------------------
def test_centre_view_sees_only_the_centre() -> None:
    from faceprint.training import CentreView

    torch.manual_seed(0)
    view = CentreView(CompactFaceNet(dim=8, input_size=32, width=4), zoom=0.5).eval()
    a = torch.randn(1, 3, 32, 32)
    b = torch.randn(1, 3, 32, 32)
    b[:, :, 7:25, 7:25] = a[:, :, 7:25, 7:25]  # the same centre half (plus a pixel for bilinear), other borders
    assert torch.equal(view.view(a), view.view(b))
    assert torch.allclose(view(a), view(b)) and view(a).shape == (1, 8)
    # zoom 0.5 doubles the centre: output pixel j samples the input at 7.75 + j / 2 (pixel centres)
    ramp = torch.arange(32.0).repeat(1, 3, 32, 1)
    assert torch.allclose(view.view(ramp)[0, 0, 0], 7.75 + torch.arange(32.0) / 2, atol=1e-4)
    whole = CentreView(view.net, zoom=1.0)
    assert torch.equal(whole.view(a), a) and torch.allclose(whole(a), view.net(a))
    assert (view.dim, view.input_size, view.in_channels) == (8, 32, 3)
    assert "grid" not in view.state_dict() and set(view.state_dict()) == {f"net.{k}" for k in view.net.state_dict()}
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="zoom"):
            CentreView(view.net, zoom=bad)
    with pytest.raises(ValueError, match="input_size"):
        CentreView(AdaptationHead(4, 4), zoom=0.5)


def test_centre_view_of_a_larger_input_keeps_its_pixels() -> None:
    """With an input 1 / zoom times the network's, the centre is the input's own pixels and zoom 1 halves it."""
    from faceprint.training import CentreView

    torch.manual_seed(0)
    net = CompactFaceNet(dim=8, input_size=32, width=4).eval()
    x = torch.randn(2, 3, 64, 64)
    centre = CentreView(net, zoom=0.5, input_size=64)
    assert centre.input_size == 64 and centre.dim == 8
    assert torch.allclose(centre.view(x), x[:, :, 16:48, 16:48], atol=1e-5)
    whole = CentreView(net, zoom=1.0, input_size=64)  # output pixel j samples 2j + 0.5: a 2x2 mean
    assert torch.allclose(whole.view(x), torch.nn.functional.avg_pool2d(x, 2), atol=1e-5)
    assert whole(x).shape == (2, 8)
    with pytest.raises(ValueError, match="the model expects 64x64"):
        Trainer(whole, TrainConfig()).embed(np.zeros((1, 32, 32, 3), np.uint8))
    for bad in (8, 32.0, True):
        with pytest.raises(ValueError, match="input_size must be an int"):
            CentreView(net, zoom=0.5, input_size=bad)  # type: ignore[arg-type]
