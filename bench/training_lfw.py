"""Does a triplet-loss adaptation head on top of frozen SFace help on LFW?

Training data: every image (not only the pair images) of the 2,132 identities named in LFW view 1
``pairsDevTrain.txt``; only the ~945 of them with at least 2 images give triplets. The inputs are the
frozen SFace vectors of those images (YuNet central face, cached by ``bench/lfw_embeddings.py`` in
``bench/cache/lfw_all_sface.npz``; built there on first use). The head (:class:`AdaptationHead`,
residual, initialised to the identity so it starts at SFace's accuracy) is trained with the triplet
loss and a P x K sampler for a fixed number of epochs chosen before looking at any test number.

Evaluation, always against frozen SFace alone on the same cached vectors:

* ``pairsDevTest.txt`` (view 1, 1,000 pairs, identities disjoint from DevTrain): accuracy at the
  best-accuracy threshold of ``pairsDevTrain.txt`` (each model's own), ROC AUC, TAR at FMR, EER; and a
  paired count of pairs the head fixes / breaks;
* ``pairs.txt`` (view 2, 10 folds): the standard protocol. Its identities **overlap** DevTrain (1,689 of
  its 4,281 people are DevTrain identities), so this is optimistic for the head; the 10-fold accuracy is
  therefore also reported on the subset of pairs whose two identities are both outside DevTrain
  (2,490 of the 6,000 pairs, folds kept).

Several miners and margins are compared (one seed each) and the main configuration is repeated over
seeds. The main head is exported to ONNX and re-scored through :class:`faceprint.embedding.OnnxEmbedder`
to check the exported model gives the same numbers.

    python bench/training_lfw.py                 # -> bench/results/training_lfw.json (+ .png)
    python bench/training_lfw.py --quick         # one config, few epochs (a smoke run)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from lfw_embeddings import load as load_lfw_embeddings  # noqa: E402

from faceprint import __version__  # noqa: E402
from faceprint.datasets import Pair, data_root, lfw_pairs  # noqa: E402
from faceprint.embedding import OnnxEmbedder  # noqa: E402
from faceprint.evaluation import best_accuracy_threshold, cosine_scores, evaluate_verification  # noqa: E402
from faceprint.training.export import check_onnx, export_onnx, pair_thresholds, write_spec  # noqa: E402
from faceprint.training.networks import AdaptationHead  # noqa: E402
from faceprint.training.trainer import (  # noqa: E402
    History,
    TrainConfig,
    Trainer,
    evaluate_embeddings,
    plot_history,
)

RESULTS = ROOT / "bench" / "results"


# -- data -------------------------------------------------------------------------------------
def pair_arrays(pairs: list[Pair], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row of image a, row of image b (-1 when the image had no face), labels, folds."""

    def row(p: Path) -> int:
        return index.get(f"{p.parent.name}/{p.name}", -1)

    a = np.array([row(p.path_a) for p in pairs])
    b = np.array([row(p.path_b) for p in pairs])
    return a, b, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])


def scores_for(emb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    nan = np.full((1, emb.shape[1]), np.nan, np.float32)
    table = np.concatenate([emb, nan])  # row -1 -> NaN: a failure to acquire
    return cosine_scores(table[a], table[b])


# -- evaluation -------------------------------------------------------------------------------
def evaluate(emb: np.ndarray, protocols: dict[str, Any], model: str) -> dict[str, Any]:
    """DevTest at the DevTrain threshold, pairs.txt 10-fold, and the DevTrain-disjoint subset."""
    tr = protocols["devtrain"]
    s_tr = scores_for(emb, tr["a"], tr["b"])
    thr, devtrain_acc = best_accuracy_threshold(s_tr, tr["y"])
    te = protocols["devtest"]
    s_te = scores_for(emb, te["a"], te["b"])
    dev = evaluate_verification(s_te, te["y"], te["folds"], model=model, threshold=thr)
    v2 = protocols["pairs"]
    s_v2 = scores_for(emb, v2["a"], v2["b"])
    full = evaluate_verification(s_v2, v2["y"], v2["folds"], model=model)
    m = v2["disjoint"]
    sub = evaluate_verification(s_v2[m], v2["y"][m], v2["folds"][m], model=model)

    def brief(r: Any) -> dict[str, Any]:
        d = r.to_dict()
        return {k: d[k] for k in ("accuracy", "accuracy_std", "auc", "eer", "tar_at_fmr_1e-2", "tar_at_fmr_1e-3")}

    return {
        "devtrain_threshold": thr,
        "devtrain_accuracy_at_it": devtrain_acc,
        "devtest": brief(dev),
        "pairs_10fold": {**brief(full), "fold_accuracies": list(full.fold_accuracies)},
        "pairs_10fold_disjoint": {**brief(sub), "fold_accuracies": list(sub.fold_accuracies), "n_pairs": int(m.sum())},
        "_devtest_correct": ((np.nan_to_num(s_te, nan=-np.inf) >= thr) == te["y"]),
    }


def paired(head: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Pairs the head fixes / breaks on DevTest, and per-fold differences on pairs.txt."""
    h, b = head["_devtest_correct"], base["_devtest_correct"]
    out: dict[str, Any] = {"devtest_fixed": int((h & ~b).sum()), "devtest_broken": int((~h & b).sum())}
    for key in ("pairs_10fold", "pairs_10fold_disjoint"):
        d = np.array(head[key]["fold_accuracies"]) - np.array(base[key]["fold_accuracies"])
        out[key] = {"mean_diff": float(d.mean()), "std_diff": float(d.std()), "folds_better": int((d > 0).sum()),
                    "folds_worse": int((d < 0).sum())}
    return out


def public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if not k.startswith("_")}


# -- training ---------------------------------------------------------------------------------
def train_head(
    x: np.ndarray, y: np.ndarray, *, miner: str, margin: float, epochs: int, seed: int, threads: int,
    batch_p: int, batch_k: int, lr: float, val: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Trainer, History, float]:
    torch.manual_seed(seed)
    head = AdaptationHead(x.shape[1], x.shape[1], hidden=256)
    cfg = TrainConfig(miner=miner, margin=margin, epochs=epochs, batch_p=batch_p, batch_k=batch_k, lr=lr,
                      seed=seed, device="cpu", threads=threads)
    trainer = Trainer(head, cfg)
    t0 = time.perf_counter()
    history = trainer.fit(x, y, val_x=None if val is None else val[0], val_y=None if val is None else val[1])
    return trainer, history, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-p", type=int, default=32)
    ap.add_argument("--batch-k", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--miners", nargs="+", default=["semi-hard", "batch-hard", "batch-all", "random"])
    ap.add_argument("--margins", nargs="+", type=float, default=[0.1, 0.2, 0.4])
    ap.add_argument("--main-miner", default="semi-hard")
    ap.add_argument("--main-margin", type=float, default=0.2)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="main config only, 3 epochs, one seed")
    ap.add_argument("--out", type=Path, default=RESULTS / "training_lfw.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.miners, args.margins, args.seeds = 3, [args.main_miner], [args.main_margin], [0]
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    root = data_root(required=True)
    assert root is not None
    paths, names, emb = load_lfw_embeddings()  # rows with a face only
    index = {str(p): i for i, p in enumerate(paths)}
    protocols: dict[str, Any] = {}
    for key, file in (("devtrain", "pairsDevTrain.txt"), ("devtest", "pairsDevTest.txt"), ("pairs", "pairs.txt")):
        pairs = lfw_pairs(root, file)
        a, b, y, folds = pair_arrays(pairs, index)
        protocols[key] = {"a": a, "b": b, "y": y, "folds": folds, "pairs": pairs}
    devtrain_ids = {p.path_a.parent.name for p in protocols["devtrain"]["pairs"]} | {
        p.path_b.parent.name for p in protocols["devtrain"]["pairs"]
    }
    devtest_ids = {p.path_a.parent.name for p in protocols["devtest"]["pairs"]} | {
        p.path_b.parent.name for p in protocols["devtest"]["pairs"]
    }
    v2 = protocols["pairs"]
    v2_ids = {p.path_a.parent.name for p in v2["pairs"]} | {p.path_b.parent.name for p in v2["pairs"]}
    v2["disjoint"] = np.array(
        [p.path_a.parent.name not in devtrain_ids and p.path_b.parent.name not in devtrain_ids for p in v2["pairs"]]
    )
    train_mask = np.isin(names, sorted(devtrain_ids))
    x_tr, y_tr = emb[train_mask], names[train_mask]
    val_mask = np.isin(names, sorted(devtest_ids))
    counts = np.unique(y_tr, return_counts=True)[1]
    data_info = {
        "train_identities": int(len(counts)),
        "train_identities_with_2_images": int((counts >= 2).sum()),
        "train_images": int(train_mask.sum()),
        "train_images_in_identities_with_2": int(counts[counts >= 2].sum()),
        "devtrain_devtest_identity_overlap": len(devtrain_ids & devtest_ids),
        "pairs_txt_identities": len(v2_ids),
        "pairs_txt_identities_in_devtrain": len(v2_ids & devtrain_ids),
        "pairs_txt_pairs_disjoint_from_devtrain": int(v2["disjoint"].sum()),
        "pairs_txt_genuine_pairs_disjoint_from_devtrain": int((v2["disjoint"] & v2["y"]).sum()),
        "monitoring_identities": "DevTest identities (one-shot / verification per epoch; never used to choose)",
    }
    print(f"train: {data_info['train_images']} images of {data_info['train_identities']} DevTrain identities "
          f"({data_info['train_identities_with_2_images']} with >= 2 images); pairs.txt pairs outside DevTrain: "
          f"{data_info['pairs_txt_pairs_disjoint_from_devtrain']}", flush=True)

    base = evaluate(emb, protocols, "sface")
    results: dict[str, Any] = {"sface (frozen)": public(base)}

    def show(label: str, r: dict[str, Any], seconds: float | None = None) -> None:
        t = f" ({seconds:.0f} s)" if seconds is not None else ""
        print(f"{label:34s} DevTest {100 * r['devtest']['accuracy']:.2f} %  AUC {r['devtest']['auc']:.4f}  "
              f"pairs.txt {100 * r['pairs_10fold']['accuracy']:.2f} %  disjoint "
              f"{100 * r['pairs_10fold_disjoint']['accuracy']:.2f} %  TAR@1e-3 "
              f"{100 * r['pairs_10fold']['tar_at_fmr_1e-3']:.2f} %{t}", flush=True)

    show("sface (frozen)", base)
    # the per-epoch monitoring numbers of the main run, for frozen SFace (the head's epoch 0)
    data_info["monitoring_sface"] = evaluate_embeddings(emb[val_mask], names[val_mask], seed=0)
    common = {"epochs": args.epochs, "threads": args.threads, "batch_p": args.batch_p, "batch_k": args.batch_k,
              "lr": args.lr}
    configs = [(m, args.main_margin, 0) for m in args.miners]
    configs += [(args.main_miner, mg, 0) for mg in args.margins if mg != args.main_margin]
    configs += [(args.main_miner, args.main_margin, s) for s in args.seeds if s != 0]
    runs: list[dict[str, Any]] = []
    main_trainer: Trainer | None = None
    main_history: History | None = None
    for miner, margin, seed in configs:
        is_main = miner == args.main_miner and margin == args.main_margin and seed == 0
        val = (emb[val_mask], names[val_mask]) if is_main else None
        trainer, history, seconds = train_head(x_tr, y_tr, miner=miner, margin=margin, seed=seed, val=val, **common)
        r = evaluate(trainer.embed(emb), protocols, f"head[{miner},{margin}]")
        label = f"head {miner} margin {margin} seed {seed}"
        show(label, r, seconds)
        last = history.epochs[-1]
        runs.append({
            "miner": miner, "margin": margin, "seed": seed, "seconds": seconds, **public(r),
            "vs_sface": paired(r, base), "final_loss": last.loss, "final_fraction_active": last.fraction_active,
            "final_fraction_valid_active": last.fraction_valid_active,
            "history": history.to_dict() if is_main else None,
        })
        if is_main:
            main_trainer, main_history = trainer, history

    summary: dict[str, Any] = {}
    main_runs = [r for r in runs if r["miner"] == args.main_miner and r["margin"] == args.main_margin]
    for key in ("devtest", "pairs_10fold", "pairs_10fold_disjoint"):
        accs = np.array([r[key]["accuracy"] for r in main_runs])
        summary[key] = {
            "sface_accuracy": base[key]["accuracy"],
            "head_accuracy_mean_over_seeds": float(accs.mean()),
            "head_accuracy_std_over_seeds": float(accs.std()),
            "head_minus_sface": float(accs.mean() - base[key]["accuracy"]),
            "n_seeds": int(accs.size),
        }
    best = max(runs, key=lambda r: r["pairs_10fold_disjoint"]["accuracy"])
    summary["best_config_on_disjoint_pairs"] = {"miner": best["miner"], "margin": best["margin"], "seed": best["seed"],
                                                "note": "chosen on test pairs: indicative only, not a claim"}

    # -- ONNX round trip of the main head -------------------------------------------------------
    onnx_check: dict[str, Any] = {}
    if main_trainer is not None and main_history is not None:
        plot_history(main_history, RESULTS / "training_lfw_curves.png")
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = export_onnx(main_trainer.model, Path(tmp) / "model.onnx", input_shape=(emb.shape[1],))
            diff = check_onnx(main_trainer.model, onnx_path, emb[:256])
            thresholds, tinfo = pair_thresholds(main_trainer.embed(emb[val_mask]), names[val_mask])
            spec = write_spec(onnx_path, name="lfw-devtrain-head", kind="head", dim=emb.shape[1], base="sface",
                              in_dim=emb.shape[1], thresholds=thresholds,
                              thresholds_info={"measured_on": "LFW DevTest identities", **tinfo})
            onnx_emb = OnnxEmbedder(spec).embed_vectors(emb)
            r_onnx = evaluate(onnx_emb, protocols, "head-onnx")
        onnx_check = {
            "max_abs_diff_torch_vs_onnx": diff,
            "max_abs_diff_embeddings_trainer_vs_onnx_embedder": float(np.abs(onnx_emb - main_trainer.embed(emb)).max()),
            "devtest_accuracy_onnx": r_onnx["devtest"]["accuracy"],
            "pairs_10fold_accuracy_onnx": r_onnx["pairs_10fold"]["accuracy"],
        }
        print(f"ONNX: max |torch - onnx| {diff:.1e}; pairs.txt through OnnxEmbedder "
              f"{100 * r_onnx['pairs_10fold']['accuracy']:.2f} %", flush=True)

    plot(results["sface (frozen)"], runs, RESULTS / "training_lfw.png")
    report = {
        "meta": {
            "date": dt.date.today().isoformat(),
            "faceprint": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": args.threads,
            "seconds_total": time.perf_counter() - t_start,
            "embeddings": "bench/cache/lfw_all_sface.npz (YuNet central face, SFace int8, no flip)",
            "head": "AdaptationHead(128 -> 128, hidden 256, residual, identity at init)",
            "training": {**common, "optimizer": "Adam, weight decay 5e-4", "device": "cpu"},
            "protocol": (
                "DevTest: accuracy at each model's best-accuracy threshold on pairsDevTrain (whose identities are "
                "the training identities); pairs.txt: 10-fold, threshold chosen on the 9 other folds; disjoint: "
                "the same on pairs whose two identities are both outside DevTrain (folds kept)."
            ),
        },
        "data": data_info,
        "results": results,
        "runs": runs,
        "summary": summary,
        "onnx": onnx_check,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"-> {args.out} ({time.perf_counter() - t_start:.0f} s)")
    return 0


def plot(base: dict[str, Any], runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("devtest", "DevTest (DevTrain threshold)"), ("pairs_10fold", "pairs.txt 10-fold"),
            ("pairs_10fold_disjoint", "pairs.txt, identities outside DevTrain")]
    labels = ["SFace"] + [f"{r['miner']}\nm={r['margin']} s={r['seed']}" for r in runs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    for ax, (key, title) in zip(axes, keys):
        vals = [100 * base[key]["accuracy"]] + [100 * r[key]["accuracy"] for r in runs]
        colors = ["#555555"] + ["#1f77b4"] * len(runs)
        ax.bar(range(len(vals)), vals, color=colors)
        ax.axhline(vals[0], color="#555555", lw=1, ls="--")
        lo, hi = min(vals), max(vals)
        ax.set_ylim(lo - max(0.5, hi - lo), hi + 0.3 * max(0.5, hi - lo))
        ax.set_xticks(range(len(vals)), labels, rotation=90, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("accuracy %")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Triplet-loss adaptation head on frozen SFace vs SFace alone (LFW)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
