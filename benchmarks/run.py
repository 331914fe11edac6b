"""Run dlhw's benchmarks and print one table: dlhw against PyTorch, side by side, same process.

    python -m benchmarks.run                 # kernels: conv, LSTM, attention, batchnorm, Adam
    python -m benchmarks.run --training      # + ConvNet and MLP trained on digits (accuracy, time)
    python -m benchmarks.run --autograde     # + dlhw autograde against nbgrader autograde
    python -m benchmarks.run --only conv     # the modules whose name contains "conv"

Every kernel case is float64 on the CPU, forward plus backward, median of repeated runs timed
alternately with PyTorch's (so a noisy neighbour slows both alike). Thread counts are what
numpy's BLAS and torch choose by default, unless --threads N pins both.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="run only modules whose name contains this")
    p.add_argument("--threads", type=int, default=None, help="pin numpy's BLAS and torch to N threads")
    p.add_argument("--training", action="store_true", help="also train the digits models")
    p.add_argument("--autograde", action="store_true", help="also compare autograde with nbgrader")
    p.add_argument("--cluster", action="store_true",
                   help="also grade one class locally and on a 2-worker Dask LocalCluster")
    p.add_argument("--students", type=int, default=None, help="class size (default: 16 for --autograde, 12 for --cluster)")
    args = p.parse_args(argv)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import numpy as np  # noqa: F401  (after the thread settings)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)

    import benchmarks
    from benchmarks.common import time_pair

    rows = []
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    for name in names:
        if args.only and args.only not in name:
            continue
        mod = importlib.import_module(f"benchmarks.{name}")
        for case in mod.cases():
            t_d, t_t = time_pair(case)
            ratio = t_d / t_t
            verdict = "" if case.goal is None else ("ok" if ratio <= case.goal else "MISSED")
            rows.append((case.name, t_d * 1e3, t_t * 1e3, ratio, case.goal, verdict))
            print(f"  measured {case.name}", file=sys.stderr)
    w = max([len("case")] + [len(r[0]) for r in rows])
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} torch thread(s), float64, CPU")
    print(f"{'case':<{w}}  {'dlhw ms':>9}  {'torch ms':>9}  {'ratio':>6}  {'goal':>5}")
    for name, d, t, r, g, v in rows:
        print(f"{name:<{w}}  {d:9.2f}  {t:9.2f}  {r:6.2f}  {'' if g is None else f'{g:5.2f}'}  {v}")
    if args.training:
        importlib.import_module("benchmarks.bench_training").main()
    if args.autograde:
        importlib.import_module("benchmarks.bench_autograde").main(n=args.students or 16)
    if args.cluster:
        importlib.import_module("benchmarks.bench_cluster").main(n=args.students or 12)
    return 0


if __name__ == "__main__":
    sys.exit(main())
