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


#: Local worker processes allowed per core: past it a machine spends its time starting
#: interpreters, and workers miss their heartbeats (``local:32`` on 2 cores printed 43 lines of
#: Dask's tracebacks, even with ``-q``).
_WORKERS_PER_CORE = 4


def _local_workers(scheduler: str) -> int:
    text = scheduler.removeprefix("local:")
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise InvalidParameterError(
            f"scheduler {scheduler!r}: give local:N with N worker processes, e.g. local:4"
        )
    cores = os.cpu_count() or 1
    if int(text) > _WORKERS_PER_CORE * cores:
        raise InvalidParameterError(
            f"local:{text} would start {text} worker processes on {cores} cores; give at most "
            f"local:{_WORKERS_PER_CORE * cores} (a cluster of several machines runs with "
            "--scheduler tcp://HOST:8786)"
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
    import dask

    seconds = _seconds(dask.config.get(_TIMEOUT_KEY, "10s"))
    client = _connect(distributed, scheduler, seconds)
    with client:
        yield client


def _no_scheduler(address: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(
        f"no Dask scheduler answers at {address} ({why}); start one with 'dask scheduler' and "
        "workers with 'dask worker ADDRESS', or check the address"
    )


def _seconds(value) -> float:
    from dask.utils import parse_timedelta

    return float(parse_timedelta(value, default="seconds"))


#: Seconds a server is given for its first words: a Dask scheduler greets its client at once
#: with a message whose first 8 bytes are its length.
_FIRST_WORD = 0.5
#: A first message longer than this is no Dask greeting: an SSH server's banner, read as a
#: length, asked Dask to allocate 2.82 EiB.
_GREETING_MAX = 1 << 26


def _refuse_what_is_not_dask(address: str, seconds: float) -> None:
    """Connect to a ``tcp://`` address and refuse it if the server hangs up at once or greets
    with something that is not the start of a Dask message (an 8-byte little-endian length of
    a few bytes to a few MB). A server that says nothing is left to the client's deadline."""
    import socket

    from distributed.comm import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme != "tcp":  # TLS speaks its handshake first; other transports are not sockets
        return
    host, port = parse_host_port(location)
    first = b""
    try:
        with socket.create_connection((host, port), timeout=seconds) as connection:
            connection.settimeout(_FIRST_WORD)
            try:
                while len(first) < 8:
                    part = connection.recv(8 - len(first))
                    if not part:
                        break
                    first += part
            except TimeoutError:
                if not first:
                    return  # silent: the client's own deadline decides
    except OSError as exc:
        raise _no_scheduler(address, exc.strerror or str(exc)) from None
    if len(first) == 8 and 0 < int.from_bytes(first, "little") <= _GREETING_MAX:
        return  # the length of a Dask greeting
    said = f"it said {first!r} first" if first else "it hung up at once"
    raise _no_scheduler(address, f"something else listens there: {said}")


def _connect(distributed, address: str, seconds: float):
    """A :class:`distributed.Client` of ``address``, or one line within about ``seconds``.

    The client is made in a thread that is given ``seconds`` plus a margin: its own timeout
    bounds the connection, not the handshake, and a port that accepts and never answers (an
    HTTP server, a stopped service) held it for ever. If the thread is still waiting it is
    left behind (a daemon: it ends with the process, which then exits with the error)."""
    import threading

    _refuse_what_is_not_dask(address, seconds)
    made: dict = {}

    def make() -> None:
        try:
            made["client"] = distributed.Client(address, timeout=f"{seconds}s")
        except BaseException as exc:  # handed to the caller's thread
            made["error"] = exc

    thread = threading.Thread(target=make, name="imgclust-dask-connect", daemon=True)
    thread.start()
    thread.join(seconds + 5)
    if thread.is_alive():
        raise _no_scheduler(address, f"nothing answered within {seconds:g} s")
    error = made.get("error")
    if isinstance(error, (OSError, TimeoutError)):
        raise _no_scheduler(address, str(error)) from None
    if error is not None:
        raise error
    return made["client"]


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
