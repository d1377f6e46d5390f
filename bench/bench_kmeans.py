"""fit-kmeans against faiss and sklearn on the same frames: wall time alternated, inertia computed one way.

    .venv/bin/python bench/bench_kmeans.py [--frames 200000 --dim 768 --k 500 --rounds 3] [--sklearn-full] [--quick]

Frames come from a seeded Gaussian mixture (--components Gaussians with
random means and widths). Methods:
  audiotok   audiotok.units.kmeans.fit_kmeans with the defaults fit-kmeans uses
  faiss      faiss.Kmeans, 20 iterations (its defaults otherwise)
  sklearn/1  MiniBatchKMeans with fairseq simple_kmeans' settings (k-means++,
             batch 10000, max_iter 100, max_no_improvement 100,
             reassignment_ratio 0, tol 0) and n_init 1: one run (minutes), for its inertia
  sklearn    the same with fairseq's n_init 20, with --sklearn-full (many minutes)
audiotok and faiss alternate round by round (bench/harness.py); every inertia
is computed the same way, by audiotok.units.kmeans.inertia on all the frames
(exact nearest centroid, float64 distances). The targets: audiotok's time
<= faiss's (ratio faiss / audiotok >= 1) at an inertia <= sklearn n_init 1's.
--quick is the bench/run_all.sh setting (the same sizes, sklearn once).
"""

import argparse
import os
import sys
import time

import numpy as np
from harness import Results, alternate

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from audiotok.units.kmeans import fit_kmeans, inertia  # noqa: E402


def gaussian_mixture(frames: int, dim: int, components: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((components, dim), dtype=np.float32)
    widths = rng.uniform(0.5, 1.5, components).astype(np.float32)
    which = rng.choice(components, frames, p=rng.dirichlet(np.ones(components)))
    return means[which] + rng.standard_normal((frames, dim), dtype=np.float32) * widths[which, None]


def sklearn_fairseq(n_init: int, k: int, seed: int):
    from sklearn.cluster import MiniBatchKMeans

    def fit(x):
        model = MiniBatchKMeans(
            n_clusters=k,
            init="k-means++",
            max_iter=100,
            batch_size=10000,
            compute_labels=False,
            tol=0.0,
            max_no_improvement=100,
            init_size=None,
            n_init=n_init,
            reassignment_ratio=0.0,
            random_state=seed,
        )
        return model.fit(x).cluster_centers_.astype(np.float32)

    return fit


def faiss_kmeans(k: int, seed: int):
    import faiss

    def fit(x):
        model = faiss.Kmeans(x.shape[1], k, niter=20, seed=seed, verbose=False)
        model.train(x)
        return model.centroids

    return fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=500)
    parser.add_argument("--components", type=int, default=1000, help="Gaussians in the mixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of audiotok and faiss")
    parser.add_argument("--sklearn-full", action="store_true", help="also run sklearn with fairseq's n_init 20 (many minutes)")
    parser.add_argument("--quick", action="store_true", help="the run_all setting: these defaults (about 2 minutes)")
    args = parser.parse_args()

    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    x = gaussian_mixture(args.frames, args.dim, args.components, args.seed)
    case = f"{args.frames} x {args.dim}, K={args.k}"
    print(f"k-means on {args.frames} x {args.dim} float32 frames ({args.components}-Gaussian mixture), k={args.k}, {threads} threads", flush=True)
    results = Results("fit-kmeans")

    phases = {}

    def ours():
        result = fit_kmeans(x, args.k, seed=args.seed)
        phases.update(result.phases)
        return result.centroids

    faiss_fit = faiss_kmeans(args.k, args.seed)
    timings = alternate({"audiotok": ours, "faiss Kmeans, 20 iterations": lambda: faiss_fit(x)}, rounds=args.rounds)
    inertias = {name: inertia(x, np.asarray(t.last, dtype=np.float32)) for name, t in timings.items()}
    once = {"sklearn MiniBatchKMeans, n_init 1": sklearn_fairseq(1, args.k, args.seed)}
    if args.sklearn_full:
        once["sklearn MiniBatchKMeans, n_init 20"] = sklearn_fairseq(20, args.k, args.seed)
    for name, fit in once.items():
        start = time.perf_counter()
        centroids = fit(x)
        results.fact(case, f"{name}: wall (one run)", f"{time.perf_counter() - start:.1f} s")
        inertias[name] = inertia(x, centroids)

    ours_inertia = inertias["audiotok"]
    results.fact(case, "audiotok phases (last round)", ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
    for name, value in inertias.items():
        versus = "" if name == "audiotok" else f" (audiotok {100 * (ours_inertia / value - 1):+.2f}% against it)"
        results.fact(case, f"inertia {name}", f"{value:.6e}{versus}")
    target = inertias["sklearn MiniBatchKMeans, n_init 1"]
    results.fact(case, "inertia target: audiotok <= sklearn n_init 1", "met" if ours_inertia <= target else "NOT met")
    results.ratio(case, timings, ours="audiotok", peer="faiss Kmeans, 20 iterations", target=1.0)


if __name__ == "__main__":
    main()
