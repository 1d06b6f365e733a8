"""Data parallelism: the batch shared out among processes, the gradient of the whole batch.

A second core does little for one NumPy process: matrix products use it, but the many
elementwise passes between them run on one core, and Python threads would hand the
interpreter's lock back and forth at every NumPy call. So the batch is shared out among
processes instead, as PyTorch's DistributedDataParallel shares it out among GPUs:

- the parameters move into memory shared by all processes before the workers are forked,
  so every process reads the same weights, and the optimizer step of the parent process
  is seen by all of them;
- each worker holds its forked copy of the model, a replica with the same weights and a
  graph and gradients of its own; it computes the loss of its rows and the backward, and
  its gradients land in a shared buffer of its own;
- each process scales its loss by its share of the rows before the backward, so the
  parent, once it has computed its own rows, only adds the gradients up: their weighted
  average (the all-reduce of DDP, done here by one process).

When the loss is a mean over rows of equally many tokens (a language model's windows),
that average is the gradient of the whole batch, up to float rounding; so is the loss.
Each process runs its matrix products on one thread, where one process alone uses all.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
from threadpoolctl import ThreadpoolController

from minigrad import Tensor, no_grad
from minigrad.nn import Module


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


MAX_PROCESSES = 8  # beyond this, a toy model's shares are too small to be worth a process


def cannot_share(config: Any, processes: int) -> str | None:
    """Why a model of `config` cannot be trained by `processes` processes, or None."""
    if processes < 2:
        return None
    if "fork" not in multiprocessing.get_all_start_methods():
        return "data parallelism forks worker processes, which this platform cannot"
    if getattr(config, "dropout", 0) > 0:
        return "dropout > 0: every process would draw the same dropout masks"
    if getattr(config, "n_experts", 0) > 0:
        return "a mixture of experts balances its load over the whole batch, not a share"
    return None


def default_processes(config: Any, batch_size: int) -> int:
    """One process per core (at most MAX_PROCESSES and one per row) if the model allows,
    on Linux; elsewhere 1, as forking a process that holds threads of system libraries
    is not safe on every system (macOS's own, for one)."""
    if not sys.platform.startswith("linux"):
        return 1
    processes = min(available_cores(), MAX_PROCESSES, batch_size)
    return processes if cannot_share(config, processes) is None else 1


def split_rows(batch: Sequence[np.ndarray], parts: int) -> list[tuple[np.ndarray, ...]]:
    """The batch's arrays cut into `parts` runs of rows (along axis 0), as even as can be;
    empty shares are left out."""
    rows = len(batch[0])
    bounds = [rows * i // parts for i in range(parts + 1)]
    return [tuple(a[lo:hi] for a in batch) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


class DataParallel:
    """Computes loss and gradient of a batch with `processes` processes (this one and
    `processes - 1` forked workers), leaving the gradient in the parameters' `.grad`.

    `loss_fn(model, rows)` must return the mean loss of `rows`, a tuple of arrays whose
    first axis is the batch; every row must count equally (see the module's docstring).
    The workers start at the first call and stop with `close()` (or at the end of a `with`).
    """

    def __init__(
        self, model: Module, loss_fn: Callable[[Module, tuple], Tensor], processes: int = 2
    ) -> None:
        if not isinstance(processes, int) or processes < 2:
            raise ValueError(f"processes must be an integer >= 2, got {processes!r}")
        reason = cannot_share(getattr(model, "config", None), processes)
        if reason:
            raise ValueError(f"cannot share the batch among {processes} processes: {reason}")
        self.model, self.loss_fn, self.processes = model, loss_fn, processes
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.workers: list[Any] = []  # (process, connection, gradient views)

    # ------------------------------------------------------------------ one step
    def loss_and_grad(self, batch: Sequence[np.ndarray]) -> float:
        """The mean loss of `batch`; its gradient is added to each parameter's `.grad`
        (None for a parameter the loss does not reach), as `loss.backward()` would."""
        return self._share(batch, backward=True)

    def loss(self, batch: Sequence[np.ndarray]) -> float:
        """The mean loss of `batch`, no graph built, every replica in the parent's mode
        (`model.eval()` for an evaluation)."""
        with no_grad():
            return self._share(batch, backward=False)

    def _share(self, batch: Sequence[np.ndarray], backward: bool) -> float:
        if not len(batch[0]):
            raise ValueError("the batch has no rows")
        if not self.workers:
            self.start()
        shares = split_rows(batch, self.processes)
        weights = [len(share[0]) / len(batch[0]) for share in shares]  # the rows' shares
        busy = self.workers[: len(shares) - 1]
        task = {"backward": backward, "training": self.model.training}
        for share, weight, worker in zip(shares[1:], weights[1:], busy):
            try:
                _send_arrays(worker[1], share, {**task, "weight": weight})
            except OSError:  # a broken pipe: the worker is gone
                self._stopped(worker)
        try:
            with _one_blas_thread():
                loss = self.loss_fn(self.model, shares[0])
                if backward:
                    loss.backward(weights[0])  # the gradient of weight * loss
        finally:
            answers = [self._answer(worker) for worker in busy]  # every answer is read
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"a data-parallel worker failed: {answer['error']}")
        for i, p in enumerate(self.params if backward else []):
            if p.grad is not None:
                for _, _, grads in busy:
                    p.grad += grads[i]  # sum of weight * gradient: the batch's gradient
        losses = [loss.item()] + [answer["loss"] for answer in answers]
        return float(np.dot(weights, losses))

    # ------------------------------------------------------------------ the workers
    def start(self) -> None:
        """Move the parameters into shared memory, then fork the workers (the first step
        does it if this was not called)."""
        for p, shared in zip(self.params, _shared_arrays([p.data for p in self.params])):
            shared[...] = p.data
            p.data = shared
        context = multiprocessing.get_context("fork")
        for _ in range(self.processes - 1):
            grads = _shared_arrays([p.data for p in self.params])
            parent_end, worker_end = context.Pipe()
            process = context.Process(
                target=self._serve, args=(worker_end, parent_end, grads), daemon=True,
                name="minigrad-worker",
            )  # fmt: skip
            process.start()
            worker_end.close()
            self.workers.append((process, parent_end, grads))

    def _serve(self, connection: Any, parent_end: Any, grads: list[np.ndarray]) -> None:
        """A worker's loop: for each share of rows, the loss (and its gradient), answered
        with the loss or the error. It stops when the parent closes the pipe."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        self.grads = grads  # this worker's shared gradient buffers
        for end in [parent_end] + [c for _, c, _ in self.workers]:
            end.close()  # the parent's ends, copied by the fork: else no close reaches us
        with _one_blas_thread():
            while True:
                try:
                    rows, task = _receive_arrays(connection)
                except EOFError:  # the parent closed the pipe, or is gone
                    return
                try:
                    self.model.train(task["training"])
                    answer = {"loss": self._loss(rows, task["weight"], task["backward"])}
                except Exception as error:  # noqa: BLE001 - handed to the parent, which raises
                    answer = {"error": repr(error)}
                connection.send_bytes(json.dumps(answer).encode())

    def _loss(self, rows: tuple, weight: float, backward: bool) -> float:
        """A worker's share: the loss, and with `backward` weight times its gradient in
        the shared buffers (zeroed first)."""
        if not backward:
            with no_grad():
                return self.loss_fn(self.model, rows).item()
        for p, g in zip(self.params, self.grads):
            g[...] = 0
            p.grad = g
        loss = self.loss_fn(self.model, rows)
        loss.backward(weight)
        return loss.item()

    def _answer(self, worker: Any) -> dict[str, Any]:
        try:
            return json.loads(worker[1].recv_bytes())
        except (EOFError, OSError):
            self._stopped(worker)

    def _stopped(self, worker: Any) -> NoReturn:
        """A worker is gone: stop the others, and say which one and how it ended."""
        process = worker[0]
        process.join(timeout=1)
        self.close()
        raise RuntimeError(
            f"a data-parallel worker (pid {process.pid}) stopped, exit code {process.exitcode}"
        )

    def close(self) -> None:
        """Stop the workers (the parameters stay in shared memory, with their values)."""
        for process, connection, _ in self.workers:
            connection.close()
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        self.workers = []

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_blas_threads: Any = None


def _one_blas_thread() -> Any:
    """A context in which NumPy's matrix products use one thread."""
    global _blas_threads
    if _blas_threads is None:  # finding the BLAS libraries takes a while: once
        _blas_threads = ThreadpoolController()
    return _blas_threads.limit(limits=1, user_api="blas")


def _shared_arrays(likes: list[np.ndarray]) -> list[np.ndarray]:
    """Zeroed arrays shaped as `likes`, in one anonymous memory map that forked processes
    share (each array starts on a 64-byte boundary)."""
    offsets, total = [], 0
    for a in likes:
        offsets.append(total)
        total += -(-a.nbytes // 64) * 64
    buffer = mmap.mmap(-1, max(total, 1))
    return [np.ndarray(a.shape, a.dtype, buffer, offset) for a, offset in zip(likes, offsets)]


def _send_arrays(connection: Any, arrays: Sequence[np.ndarray], task: dict) -> None:
    """A JSON header (the task, the arrays' shapes and dtypes), then the arrays' raw
    bytes: no pickle."""
    header = {**task, "arrays": [{"shape": a.shape, "dtype": a.dtype.str} for a in arrays]}
    connection.send_bytes(json.dumps(header).encode())
    for a in arrays:
        connection.send_bytes(np.ascontiguousarray(a).tobytes())


def _receive_arrays(connection: Any) -> tuple[tuple[np.ndarray, ...], dict]:
    task = json.loads(connection.recv_bytes())
    arrays = tuple(
        np.frombuffer(connection.recv_bytes(), np.dtype(h["dtype"])).reshape(h["shape"])
        for h in task.pop("arrays")
    )
    return arrays, task
