"""rho for every consecutive layer pair of a 12-layer f_b: fast path vs a per-class reference.

Setup: the ``mlp`` architecture (15 weight layers, width 64, random initial weights) on
the ``gaussian-mixture`` dataset (32 features, 10 classes), ``--n`` test inputs attacked
with PGD (l-inf, eps 0.1, 10 steps); split at ``a = 3`` so ``f_b`` holds 12 weight
layers and rho_j is computed for the 12 pairs ``(h_{j-1}, h_j)``, ``j = 4..15``.

* fast path: ``dependency_per_layer_pair`` (each layer prepared once per class: one
  ``torch.cdist`` per layer for KSG, one hashing per layer for EDGE), point estimates;
* reference: the same estimator written plainly, per class and per pair: KSG with
  scipy ``cKDTree`` (joint k-NN query, then marginal ball counts), EDGE with Python
  dictionaries of bucket counts per point (as the authors' code does); ``edge-authors``
  likewise, on raw activations, with numpy's legacy draws for its projection and kNN
  rows and ``numpy.partition`` for the k-th neighbour distances. It uses the same
  standardisation and the same seeded random draws (KSG jitter, EDGE projection,
  ``edge-authors``' shifts), so both paths should give the same numbers up to
  floating-point summation order.

The two sides run in alternating rounds (``--repeats``, default 3) and the medians are
reported, so that other load on a shared machine falls on both.

Usage: ``.venv/bin/python benchmarks/dependency.py [--n 10000] [--reference-pairs 12]``.
``--reference-pairs P`` times the reference on the first ``P`` pairs only and
extrapolates linearly to 12 (the report says so).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

from semirobust.empirical.attacks import PGD
from semirobust.empirical.attacks.threat import ThreatModel
from semirobust.empirical.data import gaussian_mixture
from semirobust.empirical.dependency import dependency_per_layer_pair, make_estimator
from semirobust.empirical.dependency.edge import bucket_widths, hash_dimension, hash_projection
from semirobust.empirical.dependency.edge_authors import AUTHORS_SEED, FLOOR_HASH_MAX_DIM
from semirobust.empirical.dependency.preprocess import standardise
from semirobust.empirical.dependency.rho import HighDimensionWarning
from semirobust.empirical.dependency.seeding import stream_generator
from semirobust.empirical.model import ArchitectureSpec, build_model
from semirobust.empirical.model.stages import layer_activations

SPLIT_A = 3
FB_LAYERS = 12


def attacked_activations(n: int, seed: int, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Activations h_a .. h_n (13 layers) of PGD-attacked test inputs, and their labels."""
    data = gaussian_mixture(seed=seed, n_train=10, n_test=n, dim=32, num_classes=10)
    torch.manual_seed(seed)
    spec = ArchitectureSpec("mlp", data.input_shape, data.num_classes, data.mean, data.std,
                            {"depth": SPLIT_A + FB_LAYERS - 1, "width": 64})
    model = build_model(spec).to(device).eval()
    x, y = data.x_test.to(device), data.y_test.to(device)
    attack = PGD(ThreatModel("linf", 0.1), seed=seed, steps=10)
    x_adv = torch.cat([attack(model, xb, yb) for xb, yb in zip(x.split(2000), y.split(2000))])
    with torch.no_grad():
        layers, _ = layer_activations(model, x_adv)
    return [h.double() for h in layers[SPLIT_A - 1:]], y


def _class_inputs(layers, labels, label, index):
    members = (labels == label).nonzero().squeeze(1)
    return standardise(layers[index][members])


def reference_ksg(layers, labels, *, settings, seed: int, pairs: int) -> list[float]:
    """Per class, per pair: cKDTree KSG algorithm 1 (nats), weighted by class frequency."""
    k, jitter = settings.k, settings.jitter
    classes, counts = np.unique(labels.cpu().numpy(), return_counts=True)
    values = []
    for j in range(pairs):
        total = 0.0
        for label, count in zip(classes.tolist(), counts.tolist()):
            sides = []
            for index in (j, j + 1):
                z = _class_inputs(layers, labels, label, index)
                noise = torch.randn(z.shape, generator=stream_generator(seed, "prepare", label, index), dtype=torch.float64)
                sides.append((z + jitter * noise).numpy())
            zx, zy = sides
            joint = np.hstack([zx, zy])
            distances, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
            radius = np.nextafter(distances[:, k], 0)
            n_x = cKDTree(zx).query_ball_point(zx, radius, p=np.inf, return_length=True) - 1
            n_y = cKDTree(zy).query_ball_point(zy, radius, p=np.inf, return_length=True) - 1
            mi = digamma(k) + digamma(count) - np.mean(digamma(n_x + 1) + digamma(n_y + 1))
            total += count / labels.numel() * mi
        values.append(total)
    return values


def reference_edge(layers, labels, *, settings, seed: int, pairs: int) -> list[float]:
    """Per class, per pair, per ensemble member: dictionaries of bucket counts (nats)."""
    classes, counts = np.unique(labels.cpu().numpy(), return_counts=True)
    values = []
    for j in range(pairs):
        total = 0.0
        for label, count in zip(classes.tolist(), counts.tolist()):
            hashed = []
            for index in (j, j + 1):
                z = _class_inputs(layers, labels, label, index)
                p = hash_dimension(z.shape[1], count, settings.samples_per_hash_dim)
                projection = hash_projection(z.shape[1], p, stream_generator(seed, "prepare", label, index))
                if projection is not None:
                    z = standardise(z @ projection)
                hashed.append((z.numpy(), bucket_widths(settings, count, z.shape[1]).tolist()))
            estimates = []
            for member in range(settings.ensemble):
                cx, cy, cxy = Counter(), Counter(), Counter()
                keys = []
                for i in range(count):
                    kx = _bucket(hashed[0], member, settings.ensemble, i)
                    ky = _bucket(hashed[1], member, settings.ensemble, i)
                    cx[kx] += 1
                    cy[ky] += 1
                    cxy[(kx, ky)] += 1
                    keys.append((kx, ky))
                estimates.append(sum(
                    n_ij / count * math.log(count * n_ij / (cx[kx] * cy[ky])) for (kx, ky), n_ij in cxy.items()
                ))
            mi = float(np.median(estimates)) if settings.combine == "median" else float(np.mean(estimates))
            total += count / labels.numel() * mi
        values.append(total)
    return values


def _bucket(hashed, member: int, ensemble: int, i: int) -> tuple:
    z, widths = hashed
    eps = widths[member]
    return tuple(np.floor((z[i] + (member / ensemble) * eps) / eps).astype(np.int64).tolist())


def reference_edge_authors(layers, labels, *, settings, seed: int, pairs: int) -> list[float]:
    """Per class, per pair: the authors' EDGE on raw activations, dictionaries of bucket
    counts per point, numpy's draws (nats; the clip is in bits)."""
    classes, counts = np.unique(labels.cpu().numpy(), return_counts=True)
    values = []
    for j in range(pairs):
        total = 0.0
        for label, count in zip(classes.tolist(), counts.tolist()):
            members = (labels == label).nonzero().squeeze(1)
            sides = [layers[index][members].double() for index in (j, j + 1)]
            if any(standardise(side).shape[1] == 0 for side in sides):
                continue
            uniforms = [None if settings.shifts == "grid" else torch.rand(
                (settings.passes, settings.ensemble, _widest(count, side.shape[1])),
                generator=stream_generator(seed, "prepare", label, index), dtype=torch.float64).numpy()
                for index, side in zip((j, j + 1), sides)]
            bits = _authors_edge_plain(sides[0].numpy(), sides[1].numpy(), uniforms, settings)
            total += count / labels.numel() * bits * math.log(2)
        values.append(total)
    return values


def _widest(n: int, d: int) -> int:
    return d if d <= FLOOR_HASH_MAX_DIM else min(d, math.floor(math.log2(n / 10)))


def _authors_edge_plain(x: np.ndarray, y: np.ndarray, uniforms, settings) -> float:
    n, d_x, d_y = x.shape[0], x.shape[1], y.shape[1]
    floor = max(d_x, d_y) <= FLOOR_HASH_MAX_DIM
    p_x, p_y = (d_x, d_y) if floor else (_widest(n, d_x), _widest(n, d_y))
    if not floor:
        z = np.random.RandomState(AUTHORS_SEED).standard_normal(d_x * p_x + d_y * p_y)
        std_x, std_y = (np.where(v.std(axis=0) < 1e-4, 1.0, v.std(axis=0)) for v in (x, y))
        x = x @ (z[: d_x * p_x].reshape(d_x, p_x) * (1.0 / (std_x * math.sqrt(d_x)))[:, None])
        y = y @ (z[d_x * p_x :].reshape(d_y, p_y) * (1.0 / (std_y * math.sqrt(d_y)))[:, None])
    widths = [_knn_widths(h, d) for h, d in ((x, d_x), (y, d_y))]
    scales = np.linspace(1, 1 + settings.width_range, settings.ensemble)
    gamma, bits = settings.gamma * 0.4, 0.0
    for step in range(settings.passes):
        if step:
            gamma = gamma * 2 ** (-math.sqrt(2 * bits) + 0.5 / bits) * 0.4
        members = []
        for member, scale in enumerate(scales):
            keys = []
            for h, width, u in zip((x, y), widths, uniforms):
                eps = width * gamma * scale
                shift = member / settings.ensemble * eps if u is None else 0.1 * u[step][member][: h.shape[1]] * eps
                keys.append([tuple(row) for row in np.floor((h + shift) / eps).astype(np.int64).tolist()])
            cx, cy, cxy = Counter(keys[0]), Counter(keys[1]), Counter(zip(*keys))
            members.append(sum(
                n_ij * min(max(math.log2(n * n_ij / (cx[kx] * cy[ky])), 0.001), settings.upper)
                for (kx, ky), n_ij in cxy.items()
            ) / n)
        bits = float(np.median(members))
    return bits


def _knn_widths(h: np.ndarray, d: int) -> np.ndarray:
    n, p = h.shape
    k = math.floor(0.43 * n ** (2 / 3 + 0.17 * (p / (p + 1))) * math.exp(-1.0 / max(10000, p**4)))
    rows = np.random.RandomState(AUTHORS_SEED).choice(n, size=500)
    distances = np.abs(h[rows][:, None, :] - h[None, :, :])
    knn = np.partition(distances, k - 1, axis=1)[:, k - 1, :].mean(axis=0) + 1e-4
    return knn * (18 * p / max(1 + math.log(d), 1))


REFERENCES = {"ksg": reference_ksg, "edge": reference_edge, "edge-authors": reference_edge_authors}


class Timer:
    """Wall-clock and process CPU time of a block (CPU time is what the ratio uses: the
    machine is shared, and CPU time is far less sensitive to other processes)."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def run(estimator: str, layers, labels, args) -> dict:
    """``args.repeats`` alternating rounds of (fast path, reference); the speed-up is the
    median of the per-round ratios, so that load on a shared machine hits both sides."""
    method = make_estimator(estimator)
    layers_cpu, labels_cpu = [h.cpu() for h in layers], labels.cpu()
    scale = FB_LAYERS / args.reference_pairs
    with Timer() as first_time:  # compiles or loads the CPU kernels (numba) on first use
        dependency_per_layer_pair(layers[:2], labels, estimator, unit="nats", replicates=0, seed=args.seed)
    rounds = []
    for _ in range(args.repeats):
        with Timer() as fast_time:
            fast = dependency_per_layer_pair(layers, labels, estimator, unit="nats", replicates=0, seed=args.seed)
        with Timer() as reference_time:
            reference = REFERENCES[estimator](layers_cpu, labels_cpu, settings=method.settings, seed=args.seed,
                                              pairs=args.reference_pairs)
        rounds.append({
            "fast_cpu_seconds": fast_time.cpu, "fast_wall_seconds": fast_time.wall,
            "reference_cpu_seconds_for_12_pairs": reference_time.cpu * scale,
            "reference_wall_seconds_for_12_pairs": reference_time.wall * scale,
            "speedup_cpu": reference_time.cpu * scale / fast_time.cpu,
            "speedup_wall": reference_time.wall * scale / fast_time.wall,
        })
    with Timer() as interval_time:
        with_interval = dependency_per_layer_pair(
            layers, labels, estimator, unit="nats", replicates=50, permutations=5, seed=args.seed
        )
    fast_values = [p.rho.value for p in fast][: args.reference_pairs]
    median = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
    return {
        "estimator": estimator,
        **median,
        "rounds": rounds,
        "first_pair_wall_seconds_untimed_warmup": first_time.wall,
        "fast_with_interval_and_baseline_wall_seconds": interval_time.wall,
        "fast_with_interval_and_baseline_cpu_seconds": interval_time.cpu,
        "reference_pairs_timed": args.reference_pairs,
        "max_abs_difference_nats": max(abs(a - b) for a, b in zip(fast_values, reference)),
        "rho_nats": [p.rho.value for p in fast],
        "rho_bits": [p.rho.value / math.log(2) for p in fast],
        "interval_bits": [[v / math.log(2) for v in p.rho.interval] for p in with_interval],
        "independent_bits": [p.independent.value / math.log(2) for p in with_interval],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="attacked inputs (default 10000)")
    parser.add_argument("--reference-pairs", type=int, default=FB_LAYERS, help="pairs the reference is timed on (default 12)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds; medians are reported (default 3)")
    parser.add_argument("--estimators", nargs="+", default=["ksg", "edge"], choices=sorted(REFERENCES))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="runs/bench_dependency.json")
    args = parser.parse_args(argv)
    # The layers are 30-64 wide, so every pair warns that kNN estimates are low; this is a timing.
    warnings.filterwarnings("ignore", category=HighDimensionWarning)
    device = torch.device(args.device)
    layers, labels = attacked_activations(args.n, args.seed, device)
    results = {
        "n": args.n, "classes": int(labels.unique().numel()), "pairs": FB_LAYERS,
        "dims": [h.shape[1] for h in layers], "device": str(device), "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "results": [],
    }
    for estimator in args.estimators:
        row = run(estimator, layers, labels, args)
        results["results"].append(row)
        print(
            f"{estimator} (medians of {args.repeats} rounds): fast {row['fast_cpu_seconds']:.2f} s CPU ({row['fast_wall_seconds']:.2f} s wall); "
            f"with 50-replicate interval + 5-permutation baseline "
            f"{row['fast_with_interval_and_baseline_cpu_seconds']:.1f} s CPU; reference "
            f"{row['reference_cpu_seconds_for_12_pairs']:.1f} s CPU ({row['reference_wall_seconds_for_12_pairs']:.1f} s wall) "
            f"for 12 pairs (timed on {row['reference_pairs_timed']}); speedup {row['speedup_cpu']:.1f}x CPU "
            f"({row['speedup_wall']:.1f}x wall); max |fast - reference| {row['max_abs_difference_nats']:.2e} nats",
            flush=True,
        )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
