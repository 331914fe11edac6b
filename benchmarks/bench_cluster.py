"""``dlhw autograde`` on a Dask cluster against the same batch graded locally: what distribution costs.

One class of N submissions of assignment 02 (perfect, empty, wrong and right mutants: the class of
``bench_autograde``) is graded both ways, alternately (``repeats`` times each, the best counts), with
the same parallelism:

* locally, ``--workers 2`` (two warm sandboxed servers in the instructor's process);
* on a ``distributed.LocalCluster`` of two single-threaded worker processes on this machine
  (``--scheduler``): each worker unpacks the judge once and runs one warm server.

Both runs grade the same work on the same cores, so their difference is what the cluster adds:
the client, the plugin carrying the staged judge to each worker, and each job's and result's trip
through the scheduler. The cluster's start is timed apart (a real course's cluster is already up),
and the seconds spent inside the servers (all notebooks summed) are printed for both: when they
differ too, the machine's load changed between the runs, not the cost of distribution.
Both runs must give the same grades, or the figure means nothing.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.bench_autograde import ASSIGNMENT, make_class


def _grades(results: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text())["score"] for p in sorted(results.glob(f"*/{ASSIGNMENT}.json"))}


def _server_seconds(results: Path) -> float:
    """The seconds the servers spent grading, all notebooks together (Gradescope's execution_time)."""
    return sum(json.loads(p.read_text())["execution_time"] for p in results.glob(f"*/{ASSIGNMENT}.json"))


def main(n: int = 12, workers: int = 2, repeats: int = 2) -> dict:
    import distributed
    from grader.autograde import autograde
    from grader.course import Course
    tmp = Path(tempfile.mkdtemp(prefix="dlhw-bench-cluster-"))
    runs = {"local": [], "cluster": []}
    try:
        seed_course = Course(root=tmp / "seed")
        seed_course.ensure_released(ASSIGNMENT)
        subs = tmp / "subs"
        make_class(seed_course, subs, n)
        t = time.perf_counter()
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            cluster_start = time.perf_counter() - t
            # alternately, so that a change of the machine's load hits both alike; the best of each
            for i in range(repeats):
                for label in ("local", "cluster"):
                    course = Course(root=tmp / f"{label}{i}")
                    course.ensure_released(ASSIGNMENT)
                    res = tmp / f"res-{label}{i}"
                    t = time.perf_counter()
                    autograde(course, ASSIGNMENT, subs, res, progress=False,
                              **({"scheduler": client} if label == "cluster" else {"workers": workers}))
                    runs[label].append((time.perf_counter() - t, _server_seconds(res), _grades(res)))
        grades = [g for label in runs for _, _, g in runs[label]]
        if len(grades[0]) != n or any(g != grades[0] for g in grades):
            raise RuntimeError("the cluster's grades differ from the local run's: the timing is void")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (local, local_srv, _), (remote, remote_srv, _) = (min(runs[k], key=lambda r: r[0]) for k in ("local", "cluster"))
    per = (remote - local) / n
    print(f"\nautograde {n} submissions of {ASSIGNMENT}, {workers} servers either way (wall time, best of "
          f"{repeats} alternate runs each, same grades)")
    print(f"  local (--workers {workers})                    {local:7.1f} s   (inside the servers {local_srv:.1f} s)")
    print(f"  Dask LocalCluster ({workers} workers x 1 thread)   {remote:7.1f} s   (inside the servers "
          f"{remote_srv:.1f} s; cluster start {cluster_start:.1f} s, not counted)")
    print(f"  distribution's cost per submission        {per:+7.2f} s   ((cluster - local) / {n})")
    print("  all runs: " + "; ".join(f"{label} " + ", ".join(f"{w:.1f}" for w, _, _ in runs[label]) + " s"
                                     for label in runs))
    return {"local": local, "cluster": remote, "cluster_start": cluster_start, "per_submission": per}


def cases():
    return []


if __name__ == "__main__":
    main()
