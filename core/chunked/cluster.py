"""Where the chunk tasks run: a local ``dask.distributed`` cluster, or an existing one by address.

A :class:`distributed.LocalCluster` runs one single-threaded worker process
per core (or ``workers``): the phase kernels are numba / scipy code that holds
the GIL in parts, and one thread per process keeps a worker's memory to one
chunk task at a time.  An existing cluster (``address="tcp://host:8786"``)
is used as it is; its workers must see the input and output paths.

A script that starts a local cluster needs the ``if __name__ == "__main__":``
guard (the worker processes are spawned and re-import the main module), and
a Streamlit page cannot start one (see ``shared/docs/stack-notes.md``): start
it in its own process and pass its address.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

from .._checks import check_int

__all__ = ["SPILL_LIMIT", "cluster", "compute_counting", "default_workers", "local_cluster"]


#: ``memory_limit="spill"``: each local worker spills held chunk results to disk above 60 % of this.  Measured on
#: the seed-size volume (1324 × 1985 × 492, chunks of 192, 2 workers), the phase pass's peak anonymous memory of the
#: process tree: 2.46 GiB with "auto" (11.7 GiB a worker here), 1.40 GiB with 1 GiB, in the same 47 s.
SPILL_LIMIT = "1GiB"


def default_workers() -> int:
    """Worker processes of a local cluster by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def cluster(workers: int | None = None, address: str | None = None, *,
            memory_limit: str | int | None = "spill") -> Iterator[object]:
    """A ``distributed.Client`` for the chunk tasks, closed (with its local cluster) on exit.

    Parameters
    ----------
    workers : int or None
        Worker processes of the local cluster (1 thread each); None: one per
        core (:func:`default_workers`).  Not allowed with ``address``.
    address : str or None
        Scheduler address of an existing cluster (``"tcp://host:8786"``);
        None starts a local one.
    memory_limit : str, int or None
        Memory limit of each local worker (dask's syntax, ``"2GiB"``;
        ``"auto"``: the machine's memory shared among the workers);
        ``"spill"`` (default): :data:`SPILL_LIMIT`, where dask's memory manager starts
        spilling the chunk results a worker holds for later tasks to disk
        (above 60 % of it), with pausing and killing for memory turned off
        (a task that needs more simply runs).

    Yields
    ------
    distributed.Client
        Also the default scheduler of dask computations inside the block.
    """
    from distributed import Client

    if address is not None:
        if workers is not None:
            raise ValueError("workers applies to a local cluster; an existing cluster (address) has its own")
        if not isinstance(address, str) or not address.strip():
            raise TypeError(f"address must be a scheduler address such as 'tcp://host:8786', got {address!r}")
        with Client(address) as client:
            yield client
        return
    if workers is not None:
        check_int(workers, "workers")
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {n}")
    import dask

    if memory_limit == "spill":
        memory_limit = SPILL_LIMIT
        policy = {"distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False}
    else:
        policy = {}
    with dask.config.set(policy):  # the nannies hand the configuration to the worker processes they start
        local = local_cluster(n, memory_limit=memory_limit)
        with local, Client(local) as client:
            yield client


def local_cluster(workers: int, **kwargs):
    """The project's :class:`distributed.LocalCluster`: ``workers`` single-threaded processes, no dashboard.

    The one construction behind :func:`cluster` and the dashboard's cluster
    process (:mod:`core.cluster`); the workers start with a bare
    ``__main__`` (:func:`_plain_main`).  ``kwargs`` go to ``LocalCluster``
    (``memory_limit``, ``host``).
    """
    from distributed import LocalCluster

    with _plain_main():
        return LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None,
                            **kwargs)


@contextlib.contextmanager
def _plain_main():
    """Start worker processes without re-running this process's ``__main__`` in them.

    A spawned worker imports the parent's ``__main__`` module again.  When that
    is a script run by Streamlit (a page, or an AppTest earlier in the same
    test process) the worker runs the whole script and the nanny fails to
    start ("Nanny failed to start").  While the workers start, ``__main__`` is
    a bare module: the workers import only what the tasks need.
    """
    import sys
    import types

    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _current_client():
    """The distributed client dask computes with here (a job's ``worker_client`` set as the scheduler, or the default
    client), or None for dask's local schedulers."""
    import dask

    sched = dask.config.get("scheduler", None)
    try:
        from distributed import Client, default_client
    except ImportError:  # pragma: no cover - distributed is a requirement
        return None
    if isinstance(sched, Client):
        return sched
    if sched not in (None, "dask.distributed", "distributed"):  # "threads", "sync", ...: asked for explicitly
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _same(x):
    return x


#: Seconds between two reports of :func:`compute_counting` on a distributed client while no task ends.
POLL_S = 1.0


def compute_counting(counted: list, others: list, progress=None, what: str = "chunks"):
    """``dask.compute(counted, others)``, calling ``progress(done / n, message)`` as each of the ``n`` tasks of
    ``counted`` ends (QA: the chunked engine's particles pass sat at one message for 40 s, and a Cancel waited for
    the whole pass; ``progress`` may raise to stop, and the tasks not yet run are then cancelled).

    On a distributed client the futures are followed as they complete, and while none does the count is said again
    every :data:`POLL_S` seconds (a job's cancel raises from ``progress``: it waited for the next chunk's end); on
    dask's local schedulers a :class:`dask.callbacks.Callback` counts the tasks that end.
    """
    import dask

    n = len(counted)
    if progress is None or n == 0:
        return dask.compute(counted, others)
    client = _current_client()
    if client is not None:
        from distributed import as_completed

        # each output behind a task of its own, whose key no earlier call shares: a client gives futures of one key
        # one state, so a call after a stopped one (whose cancelled futures a traceback may still hold) would
        # otherwise find its futures cancelled (CI: FutureCancelledError "cancelled for reason: unknown")
        futures = client.compute([dask.delayed(_same, pure=False)(x) for x in list(counted) + list(others)])
        try:
            ending, done, said = as_completed(futures[:n]), 0, time.monotonic()
            while done < n:
                ended = ending.next_batch(block=False)
                for _ in ended:
                    done += 1
                    progress(done / n, f"{done} of {n} {what}")
                if ended:
                    said = time.monotonic()
                elif time.monotonic() - said >= POLL_S:  # none ended: said again, so that a cancel is seen (QA: a
                    progress(done / n, f"{done} of {n} {what}")  # cancel waited 3-12 s, a chunk's time)
                    said = time.monotonic()
                else:
                    time.sleep(0.02)
            results = client.gather(futures)
        finally:
            client.cancel([f for f in futures if not f.done()])
        return results[:n], results[n:]
    from dask.callbacks import Callback

    keys = {c.key for c in counted}
    done = [0]

    def posttask(key, result, dsk, state, worker_id):
        if key in keys:
            done[0] += 1
            progress(done[0] / n, f"{done[0]} of {n} {what}")

    with Callback(posttask=posttask):
        return dask.compute(counted, others)
