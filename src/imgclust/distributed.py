"""Running the heavy part of a job on a Dask cluster.

A job that can spread its work takes ``scheduler``: None (run here, Dask is not imported), the
address of a running Dask scheduler (``tcp://host:8786``), ``"local:N"`` (a local cluster of N
worker processes for this run), or a :class:`distributed.Client` the caller already holds. The
command-line program reads ``--scheduler`` or, without it, ``$IMGCLUST_SCHEDULER``.

The work is cut into independent tasks (a strip of a raster, a batch of images) that the
workers read for themselves: the files must be on storage every worker sees (a shared file
system, or the same paths on each machine). Results come back in task order, a bounded number
ahead, so the client's memory stays bounded and the result is the same as a local run's. A
worker that dies mid-run costs only its tasks: Dask runs them again elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from imgclust.errors import InvalidParameterError, MissingDependencyError

__all__ = [
    "SCHEDULER_ENV",
    "dask_client",
    "describe_cluster",
    "map_in_order",
]

#: Environment variable the command-line program reads when ``--scheduler`` is not given.
SCHEDULER_ENV = "IMGCLUST_SCHEDULER"
#: Dask configuration key of the time given to a scheduler to answer (default 10 s).
_TIMEOUT_KEY = "imgclust.connect-timeout"
_SCHEMES = ("tcp://", "tls://", "ucx://", "ws://", "wss://", "inproc://")


def _distributed():
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            "running on a Dask cluster needs Dask: pip install 'imgclust[dask]'"
        ) from None
    return distributed


def _local_workers(scheduler: str) -> int:
    text = scheduler.removeprefix("local:")
    if not text.isdigit() or int(text) < 1:
        raise InvalidParameterError(
            f"scheduler {scheduler!r}: give local:N with N worker processes, e.g. local:4"
        )
    return int(text)


@contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``scheduler``, or None when it is None.

    Parameters
    ----------
    scheduler : str, distributed.Client or None
        ``"tcp://host:port"`` (any Dask address), ``"local:N"``, a client (used as it is and
        left open), or None.

    Raises
    ------
    MissingDependencyError
        Dask is not installed.
    InvalidParameterError
        The address is malformed or no scheduler answers there.
    """
    if scheduler is None:
        yield None
        return
    if not isinstance(scheduler, str):
        yield scheduler  # a Client the caller manages
        return
    distributed = _distributed()
    if scheduler.startswith("local:"):
        n_workers = _local_workers(scheduler)
        with (
            _environment_kept(),
            distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                # a free port on loopback: two local clusters at once (two runs) must not
                # fight over 8787, and nothing listens beyond this machine
                dashboard_address="127.0.0.1:0",
                silence_logs=40,  # logging.ERROR: no worker chatter in the terminal
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    if not scheduler.startswith(_SCHEMES):
        raise InvalidParameterError(
            f"scheduler {scheduler!r} is not a Dask address; give tcp://HOST:8786 or local:N"
        )
    try:
        import dask

        client = distributed.Client(scheduler, timeout=dask.config.get(_TIMEOUT_KEY, "10s"))
    except (OSError, TimeoutError) as exc:
        raise InvalidParameterError(
            f"no Dask scheduler answers at {scheduler} ({exc}); start one with 'dask scheduler' "
            "and workers with 'dask worker ADDRESS', or check the address"
        ) from None
    with client:
        yield client


@contextmanager
def _environment_kept() -> Iterator[None]:
    """Undo, on leaving, what Dask's nannies write into this process's environment.

    A nanny sets ``OMP_NUM_THREADS=1`` and the like in ``os.environ`` before it starts its
    worker, and leaves them there. A library that reads them later (SciPy's BLAS loads on
    first use) would then run single-threaded here too, and sum in another order: a PCA
    after a cluster run would differ from the same PCA without one in the last digits. SciPy's
    linear algebra is loaded first, with the environment the user gave.
    """
    import scipy.linalg  # noqa: F401  (loads SciPy's BLAS now)

    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def map_in_order(
    client: Any, function: Callable, items: Iterable, *, ahead: int | None = None, **common
) -> Iterator[Any]:
    """``function(item, **common)`` for every item on the cluster, yielded in item order.

    At most ``ahead`` tasks (default: twice the workers' threads) are submitted beyond the one
    being waited for, so a long list neither floods the scheduler nor fills the workers' memory
    with results. ``common`` keyword arguments go with every task (keep them small: paths,
    settings, a model). An exception raised by a task is raised here.
    """
    items = list(items)
    if ahead is None:
        threads = sum(client.nthreads().values()) or 1
        ahead = 2 * threads
    pending: list[Any] = []
    next_item = 0
    for _ in range(len(items)):
        while next_item < len(items) and len(pending) <= ahead:
            pending.append(client.submit(function, items[next_item], pure=False, **common))
            next_item += 1
        future = pending.pop(0)
        result = future.result()
        future.release()
        yield result


def describe_cluster(client: Any) -> dict:
    """The scheduler's address and the workers' count and threads, for summaries."""
    threads = client.nthreads()
    return {
        "scheduler": client.scheduler.address,
        "workers": len(threads),
        "threads": int(sum(threads.values())),
    }
