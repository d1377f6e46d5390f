"""fit-kmeans against named baselines, measured in one run on the same frames.

    .venv/bin/python bench/bench_kmeans.py [--frames 200000 --dim 768 --k 500] [--skip-sklearn-full]

Frames come from a seeded Gaussian mixture (--components Gaussians with
random means and widths). Methods:
  audiotok   audiotok.units.kmeans.fit_kmeans with the defaults fit-kmeans uses
  sklearn    MiniBatchKMeans with fairseq simple_kmeans' settings (k-means++,
             batch 10000, max_iter 100, n_init 20, max_no_improvement 100,
             reassignment_ratio 0, tol 0); --skip-sklearn-full skips this one
  sklearn/1  the same with n_init 1
  faiss      faiss.Kmeans, 20 iterations (its defaults otherwise)
Every inertia is computed the same way, by audiotok.units.kmeans.inertia on
all the frames; ratios are against audiotok (time: theirs / ours). CPU
seconds (all threads) are shown beside wall seconds: on a shared machine
they move less with other load.
"""

import argparse
import os
import sys
import time

import numpy as np

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
    parser.add_argument("--skip-sklearn-full", action="store_true", help="skip sklearn with n_init 20 (minutes); still run n_init 1")
    args = parser.parse_args()

    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    x = gaussian_mixture(args.frames, args.dim, args.components, args.seed)
    methods = {"audiotok": lambda data: fit_kmeans(data, args.k, seed=args.seed).centroids}
    if not args.skip_sklearn_full:
        methods["sklearn fairseq (n_init 20)"] = sklearn_fairseq(20, args.k, args.seed)
    methods["sklearn fairseq, n_init 1"] = sklearn_fairseq(1, args.k, args.seed)
    methods["faiss Kmeans, 20 iterations"] = faiss_kmeans(args.k, args.seed)

    print(f"k-means on {args.frames} x {args.dim} float32 frames ({args.components}-Gaussian mixture), k={args.k}, {threads} threads")
    print(f"{'method':<30} {'wall s':>7} {'cpu s':>7} {'inertia':>12} {'wall / ours':>12} {'cpu / ours':>11} {'inertia / ours':>15}")
    ours = None
    for name, fit in methods.items():
        wall, cpu = time.perf_counter(), time.process_time()
        centroids = fit(x)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total = inertia(x, np.asarray(centroids, dtype=np.float32))
        ours = ours or (wall, cpu, total)
        print(
            f"{name:<30} {wall:>7.1f} {cpu:>7.1f} {total:>12.5e} {wall / ours[0]:>12.2f} {cpu / ours[1]:>11.2f} {total / ours[2]:>15.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
