"""K/R simulation study on the statistical model: error vs n for Tucker and CP linear CNNs.

Thin wrapper around :func:`redundancy.validation.study.run_study` (also reachable as
``redundancy simulate --quick --out DIR``). Writes ``simulate_kr.json`` and three PNG figures.

    python experiments/simulate_kr.py --quick --out /tmp/kr
    python experiments/simulate_kr.py --out experiments/results/simulate_kr
"""

import argparse
import time
from pathlib import Path


from redundancy.validation.study import run_study


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short run (< 3 min on 2 cores)")
    p.add_argument("--out", default="experiments/results/simulate_kr", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--backend", default="loky")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    res = run_study(a.out, quick=a.quick, seed=a.seed, progress=not a.no_progress, backend=a.backend,
                    n_jobs=a.n_jobs)
    for group, s in res["summary"].items():
        print(group, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()})
    print("figures:", *res["figures"], sep="\n  ")
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
