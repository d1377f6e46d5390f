"""The one timing method every bench uses, and the results file bench/run_all.sh renders.

    from harness import alternate, Results

    timings = alternate({"audiotok": run_ours, "sklearn": run_sklearn}, rounds=3)
    results = Results("quantize")          # appends to $AUDIOTOK_BENCH_RESULTS when set
    results.ratio("D=768 K=500, 2M frames", timings, ours="audiotok", peer="sklearn", target=1.5)
    results.fact("D=768 K=500, 2M frames", "identical labels", "100.000%")

Rounds alternate the compared runs (the first run of each round rotates), so
a slow spell of a shared machine lands on every tool, not on one. Each
timing prints its median and spread (min..max); the ratio (peer median /
ours median: above 1 means audiotok is faster) prints last, with the
spread of the per-round ratios.
"""

import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RESULTS_ENV = "AUDIOTOK_BENCH_RESULTS"


@dataclass
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)
    outputs: list[object] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def spread(self) -> str:
        return f"{min(self.seconds):.3g}..{max(self.seconds):.3g}"

    @property
    def last(self):
        return self.outputs[-1] if self.outputs else None


def alternate(runs: dict[str, Callable[[], object]], rounds: int = 3, keep_outputs: bool = True) -> dict[str, Timing]:
    """Time each run `rounds` times, interleaved: round r starts with run r mod len(runs).

    A run may return (seconds, output) to report its own time (a subprocess whose
    start-up is measured separately, a phase of a larger job); otherwise the call is timed.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    names = list(runs)
    timings = {name: Timing(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            result = runs[name]()
            seconds = time.perf_counter() - start
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], float):
                seconds, result = result
            timings[name].seconds.append(seconds)
            if keep_outputs:
                timings[name].outputs[:] = [result]  # the last one only: outputs can be large
    return timings


def ratio_of(timings: dict[str, Timing], ours: str, peer: str) -> tuple[float, float, float]:
    """Median ratio peer/ours, and the lowest and highest of the per-round ratios."""
    per_round = [p / o for p, o in zip(timings[peer].seconds, timings[ours].seconds, strict=True)]
    return timings[peer].median / timings[ours].median, min(per_round), max(per_round)


class Results:
    """Prints each line and, when $AUDIOTOK_BENCH_RESULTS names a file, appends it as JSON."""

    def __init__(self, bench: str, path: str | None = None):
        self.bench = bench
        self.path = path or os.environ.get(RESULTS_ENV)

    def _append(self, row: dict) -> None:
        if self.path:
            with open(self.path, "a") as handle:
                handle.write(json.dumps({"bench": self.bench, **row}) + "\n")

    def timings(self, case: str, timings: dict[str, Timing], unit_of_work: float | None = None, unit: str = "") -> None:
        for t in timings.values():
            rate = f"  {unit_of_work / t.median:,.0f} {unit}/s" if unit_of_work else ""
            print(f"  {case} | {t.name:<28} median {t.median:8.3f} s  (spread {t.spread()} s, {len(t.seconds)} rounds){rate}")
            self._append(
                {"kind": "timing", "case": case, "name": t.name, "median": t.median, "min": min(t.seconds), "max": max(t.seconds), "rounds": len(t.seconds)}
            )

    def ratio(
        self, case: str, timings: dict[str, Timing], ours: str, peer: str, target: float | None = None, unit_of_work: float | None = None, unit: str = ""
    ) -> float:
        """Print every timing, then the ratio peer/ours (above 1: ours is faster)."""
        self.timings(case, timings, unit_of_work, unit)
        value, low, high = ratio_of(timings, ours, peer)
        verdict = "" if target is None else f"  target >= {target:g}: {'met' if value >= target else 'NOT met'}"
        print(f"  {case} | ratio {peer} / {ours} = {value:.2f}x (per round {low:.2f}..{high:.2f}){verdict}")
        self._append(
            {
                "kind": "ratio",
                "case": case,
                "ours": ours,
                "peer": peer,
                "ours_median": timings[ours].median,
                "ours_spread": timings[ours].spread(),
                "peer_median": timings[peer].median,
                "peer_spread": timings[peer].spread(),
                "ratio": value,
                "ratio_low": low,
                "ratio_high": high,
                "rounds": len(timings[ours].seconds),
                "target": target,
            }
        )
        return value

    def fact(self, case: str, name: str, value: str) -> None:
        """A measured value that is not a timing (identical labels, inertia, peak RSS)."""
        print(f"  {case} | {name}: {value}")
        self._append({"kind": "fact", "case": case, "name": name, "value": value})
