#!/usr/bin/env python3
"""Python baselines for `procpool pi`'s kernel, printed as one JSON line.

numpy: the vectorised estimate (uniform doubles, x*x + y*y < 1, counted in
chunks so memory stays flat). loop: the tutorial's `pi_mc`, one
`random.random()` pair per sample. Each rate is the median of several runs,
in samples per second, on one core.

    python3 bench/pi_numpy.py [--samples N] [--loop-samples N] [--repeats K]
"""

import argparse
import json
import random
import statistics
import time


def median_rate(samples, repeats, run):
    run()  # warm-up, untimed
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(samples / (time.perf_counter() - start))
    return statistics.median(rates)


def numpy_rate(samples, repeats, chunk=1_000_000):
    import numpy as np

    rng = np.random.default_rng(0)

    def run():
        inside, left = 0, samples
        while left:
            n = min(chunk, left)
            x = rng.random(n)
            y = rng.random(n)
            inside += int(np.count_nonzero(x * x + y * y < 1.0))
            left -= n
        return inside

    return median_rate(samples, repeats, run), np.__version__


def loop_rate(samples, repeats):
    def pi_mc(seed):
        random.seed(seed)
        inside = 0
        for _ in range(samples):
            x = random.random()
            y = random.random()
            if x * x + y * y < 1.0:
                inside += 1
        return 4.0 * inside / samples

    return median_rate(samples, repeats, lambda: pi_mc(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000_000)
    parser.add_argument("--loop-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = {"loop_rate": loop_rate(args.loop_samples, args.repeats)}
    try:
        result["numpy_rate"], result["numpy_version"] = numpy_rate(args.samples, args.repeats)
    except ImportError:
        result["numpy_rate"] = None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
