"""``dlhw autograde`` on a Dask cluster against the same batch graded locally: what distribution costs.

One class of N submissions of assignment 02 (perfect, empty, wrong and right mutants: the class of
``bench_autograde``) is graded twice, one after the other, with the same parallelism:

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


def main(n: int = 12, workers: int = 2) -> dict:
    import distributed
    from grader.autograde import autograde
    from grader.course import Course
    tmp = Path(tempfile.mkdtemp(prefix="dlhw-bench-cluster-"))
    times = {}
    try:
        seed_course = Course(root=tmp / "seed")
        seed_course.ensure_released(ASSIGNMENT)
        subs = tmp / "subs"
        make_class(seed_course, subs, n)

        local = Course(root=tmp / "local")
        local.ensure_released(ASSIGNMENT)
        t = time.perf_counter()
        autograde(local, ASSIGNMENT, subs, tmp / "res-local", workers=workers, progress=False)
        times["local"] = time.perf_counter() - t

        t = time.perf_counter()
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit=0,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            times["cluster_start"] = time.perf_counter() - t
            remote = Course(root=tmp / "cluster")
            remote.ensure_released(ASSIGNMENT)
            t = time.perf_counter()
            autograde(remote, ASSIGNMENT, subs, tmp / "res-cluster", progress=False, scheduler=client)
            times["cluster"] = time.perf_counter() - t
        times["local_servers"] = _server_seconds(tmp / "res-local")
        times["cluster_servers"] = _server_seconds(tmp / "res-cluster")
        same = _grades(tmp / "res-local") == _grades(tmp / "res-cluster")
        if not same or len(_grades(tmp / "res-local")) != n:
            raise RuntimeError("the cluster's grades differ from the local run's: the timing is void")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = (times["cluster"] - times["local"]) / n
    print(f"\nautograde {n} submissions of {ASSIGNMENT}, {workers} servers either way (wall time, one run each, "
          f"same grades)")
    print(f"  local (--workers {workers})                    {times['local']:7.1f} s   "
          f"(inside the servers {times['local_servers']:.1f} s)")
    print(f"  Dask LocalCluster ({workers} workers x 1 thread)   {times['cluster']:7.1f} s   "
          f"(inside the servers {times['cluster_servers']:.1f} s; cluster start {times['cluster_start']:.1f} s, "
          f"not counted)")
    print(f"  distribution's cost per submission        {per:+7.2f} s   ((cluster - local) / {n})")
    return times


def cases():
    return []


if __name__ == "__main__":
    main()
