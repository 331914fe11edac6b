"""Grading on a Dask cluster: ``dlhw autograde A ... --scheduler ADDRESS``.

Every Dask worker holds its own :class:`grader.autograde.GradingWorkers` (warm sandboxed
servers, one per worker thread) in a worker plugin. The plugin is registered once per batch and
carries the batch's staged judge (kit, server code, reference) as an archive: the judge travels
once to each worker, never with the jobs, and each worker checks that what it unpacked has the
digest the instructor's copy has. Jobs carry all else they need (cells, helper files, seed,
limits); results come back to the instructor's process as ``JobResult``s, and that process alone
writes the gradebook, the results and the autograded notebooks.

A worker that dies mid-batch loses no result: the scheduler runs the jobs it had not finished on
another worker (they had produced nothing yet, and a worker's death is not a submission's: each
submission is confined to its own sandbox), and every job's result is collected exactly once. A
job that kills workers repeatedly (the scheduler's ``allowed_failures``) is reported, like a lost
server, with its cells scored zero. A killed worker runs no teardown, so its staged judge would
stay in its machine's temporary folder: each worker stages under a name that carries the batch,
and at the batch's end every live worker (a restarted one included) removes what that batch left.

Needs ``distributed`` (a dev dependency) on the instructor's machine and on every worker, and
dlhw installed on every worker (the worker imports ``grader`` to run the plugin).
"""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Dict, Iterable, Iterator

from distributed import Client, WorkerPlugin, get_worker

from grader.sandbox.protocol import CellResult, Job, JobResult, Status

PLUGIN = "dlhw-grading"


class GradingPlugin(WorkerPlugin):
    """A worker's grading servers, for one batch: its judge, unpacked and verified, and its pool."""

    name = PLUGIN

    def __init__(self, archive: bytes, digest: str, sandbox: bool = True, batch: str = ""):
        self.archive, self.digest, self.sandbox, self.batch = archive, digest, sandbox, batch
        self.pool = self.stage = self.error = None

    def setup(self, worker) -> None:
        from grader.autograde import GradingWorkers
        from grader.sandbox.client import JudgeChanged, JudgeStage
        try:
            self.stage = JudgeStage(archive=self.archive, prefix=stage_prefix(self.batch))
            if self.stage.digest != self.digest:
                raise JudgeChanged(f"the judge unpacked on worker {worker.address} has the digest "
                                   f"{self.stage.digest[:12]}, not the batch's {self.digest[:12]}: grading stopped")
            self.pool = GradingWorkers(self.stage, self.sandbox)
        except Exception as exc:        # raised again by the first job, on the instructor's side
            self.error = exc
        self.archive = None             # unpacked: the worker needs it no more

    def teardown(self, worker) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.stage is not None:
            self.stage.cleanup()


def stage_prefix(batch: str) -> str:
    """The name a worker's staged judge of ``batch`` starts with (in its temporary folder)."""
    return f"dlhw-judge-{batch}-"


def remove_batch_stages(batch: str) -> int:
    """Run on a worker: remove the judges of ``batch`` staged on its machine, its own and those
    of workers killed there during the batch (they ran no teardown); how many it removed."""
    from grader.sandbox.client import remove_stage
    found = list(Path(tempfile.gettempdir()).glob(stage_prefix(batch) + "*"))
    for root in found:
        remove_stage(root)
    return len(found)


def grade_on_worker(job: Job) -> JobResult:
    """The Dask task: grade ``job`` on this worker thread's warm server."""
    plugin = get_worker().plugins.get(PLUGIN)
    if plugin is None:
        raise RuntimeError("this Dask worker has no dlhw grading plugin (registered by autograde)")
    if plugin.error is not None:
        raise plugin.error
    return plugin.pool.grade(job)


class ClusterWorkers:
    """The instructor's side of a batch on a cluster, used as :class:`GradingWorkers` is:
    ``submit(job)`` then ``results(futures)``; ``close`` removes the plugin from every worker."""

    def __init__(self, scheduler, stage, sandbox: bool = True):
        self._own = not isinstance(scheduler, Client)
        self.client = Client(scheduler) if self._own else scheduler
        self.batch = uuid.uuid4().hex[:8]
        self.client.register_plugin(GradingPlugin(stage.archive(), stage.digest, sandbox, self.batch), name=PLUGIN)
        self._jobs: Dict[str, Job] = {}

    def submit(self, job: Job):
        # pure=False: a job is graded once however like another it looks (its seed differs anyway)
        fut = self.client.submit(grade_on_worker, job, pure=False, key=f"grade-{self.batch}-{len(self._jobs)}")
        self._jobs[fut.key] = job
        return fut

    def results(self, futures: Iterable) -> Iterator[JobResult]:
        """Each job's result once, as they finish; a job whose workers kept dying is reported lost."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker
        seen = set()
        for fut in as_completed(list(futures)):
            job = self._jobs[fut.key]
            try:
                res = fut.result()
            except KilledWorker as exc:
                res = lost(job, f"the grading workers running this submission died ({exc})")
            if res.key not in seen:
                seen.add(res.key)
                yield res

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(PLUGIN)       # the live workers' teardown
            # then what workers killed during the batch left on their machines
            self.client.run(remove_batch_stages, self.batch, on_error="ignore")
        finally:
            if self._own:
                self.client.close()

    def __enter__(self) -> "ClusterWorkers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lost(job: Job, why: str) -> JobResult:
    cell = CellResult.stopped(Status.DIED, f"{why}; this cell and the ones after it score zero")
    return JobResult([cell for _ in job.cells], 0.0, crashed=why, key=job.key)
