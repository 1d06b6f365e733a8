"""The training loop: AdamW, warmup + cosine, clipping, evaluation, checkpoints, resume.

One step is the whole recipe of modern training in five lines: draw a batch, compute the
loss, backward, clip the gradient norm, let AdamW update the weights (and the schedule the
learning rate). Around it:

- evaluation every `eval_interval` steps on the same fixed validation batches, so the
  numbers are comparable over the run;
- a checkpoint at each evaluation and at the end, written atomically (transformer.checkpoint),
  holding the random generators' states too, so `Trainer.resume` continues a run with the
  very losses and weights it would have had without the interruption;
- one JSON line per step in `metrics.jsonl`, a progress bar with loss and tokens/s, and a
  loss curve in `loss.png`;
- Ctrl-C finishes the step, saves and stops; a NaN or infinite loss stops at once and keeps
  the last good checkpoint.

Weight decay applies to the matrices (2-D and more: linear weights, embeddings, experts),
not to biases and layer-norm gains, as in GPT-2 and nanoGPT.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigrad import no_grad, optim
from minigrad.nn import Module
from minigrad.serialization import atomic_write_bytes
from tokenizers import Tokenizer
from transformer.checkpoint import (
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_tokenizer,
)
from transformer.models import _Config
from transformer.parallel import DataParallel

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class TrainingInterruptedError(Exception):
    """Ctrl-C stopped the run after a step; the checkpoint of that step was saved."""


class TrainingDivergedError(Exception):
    """The loss or the gradient norm became NaN or infinite; nothing of that step is saved."""


@dataclass
class TrainConfig(_Config):
    """How to train (nanoGPT's names where they exist).

    steps              optimizer steps of the run
    batch_size         sequences per step
    lr, min_lr         the peak learning rate after warmup, and the floor of the cosine
                       (lr / 10 by default)
    warmup_steps       linear warmup from lr / warmup_steps to lr
    lr_decay_steps     where the cosine reaches min_lr (`steps` by default; a run stopped
                       early and resumed keeps the schedule of the whole run)
    weight_decay       AdamW's decoupled decay of the matrices
    beta1, beta2       AdamW's moment decay rates
    grad_clip          the largest global gradient norm (0 turns clipping off)
    eval_interval      evaluate (and save a checkpoint) every this many steps
    eval_batches       validation batches per evaluation
    seed               the batches' random generator
    processes          processes sharing each batch (data parallelism, transformer/parallel.py);
                       1 computes every step in this process
    """

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float | None = None
    warmup_steps: int = 100
    lr_decay_steps: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_batches: int = 20
    seed: int = 0
    processes: int = 1

    def __post_init__(self) -> None:
        self._positive("steps", "batch_size", "eval_interval", "eval_batches", "processes")
        for name in ("lr", "weight_decay", "grad_clip"):
            if not getattr(self, name) >= 0 or not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr must lie in [0, lr={self.lr}], got {self.min_lr}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if self.lr_decay_steps is not None and self.lr_decay_steps < self.warmup_steps:
            raise ValueError(
                f"lr_decay_steps={self.lr_decay_steps} must be at least "
                f"warmup_steps={self.warmup_steps}"
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def decay_steps(self) -> int:
        return max(self.lr_decay_steps or self.steps, self.warmup_steps)

    @property
    def floor_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr


def parameter_groups(model: Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: matrices decay, vectors (biases, layer-norm gains) do not."""
    params = list(model.parameters())
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class Trainer:
    """Trains `model` on `task` (see transformer.data) as `config` says.

    `out_dir` (optional) receives checkpoint.safetensors, tokenizer.json, metrics.jsonl and
    loss.png. `run()` trains to `config.steps` and returns the last metrics row;
    `Trainer.resume(out_dir, task)` continues a saved run exactly.
    """

    def __init__(
        self,
        model: Module,
        task: Any,
        config: TrainConfig,
        out_dir: str | Path | None = None,
        tokenizer: Tokenizer | None = None,
        progress: bool = True,
        run_info: dict[str, Any] | None = None,
    ) -> None:
        self.model, self.task, self.config = model, task, config
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.tokenizer, self.progress = tokenizer, progress
        self.run_info = dict(run_info or {})  # saved with each checkpoint, e.g. data settings
        self.optimizer = optim.AdamW(
            parameter_groups(model, config.weight_decay),
            lr=config.lr,
            betas=(config.beta1, config.beta2),
        )
        self.schedule = optim.WarmupCosine(
            self.optimizer, config.warmup_steps, config.decay_steps, config.floor_lr
        )
        self.rng = np.random.default_rng(config.seed)  # the training batches
        self.parallel = None
        if config.processes > 1:
            if not getattr(task, "equal_rows", False):
                raise ValueError(
                    f"processes={config.processes} needs a task whose rows count equally in "
                    f"the loss (a language model's windows), not {type(task).__name__}"
                )
            self.parallel = DataParallel(model, task.loss, config.processes)
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.last_saved_step: int | None = None

    # ------------------------------------------------------------------ one step
    def train_step(self) -> dict[str, Any]:
        """One optimizer step; the metrics row of the step."""
        start = time.perf_counter()
        self.model.train()
        batch = self.task.batch("train", self.config.batch_size, self.rng)
        self.optimizer.zero_grad()
        loss = self._loss_and_grad(batch)
        if not math.isfinite(loss):
            raise TrainingDivergedError(f"the loss became {loss} at step {self.step + 1}")
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = optim.clip_grad_norm(self.model.parameters(), max_norm)
        if not math.isfinite(grad_norm):
            raise TrainingDivergedError(
                f"the gradient norm became {grad_norm} at step {self.step + 1}"
            )
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.schedule.step()
        self.step += 1
        seconds = time.perf_counter() - start
        return {
            "step": self.step,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_sec": self.task.tokens(batch) / seconds,
        }

    def _loss_and_grad(self, batch: tuple) -> float:
        """The batch's loss, with its gradient in the parameters' `.grad`."""
        if self.parallel is not None:
            return self.parallel.loss_and_grad(batch)
        loss = self.task.loss(self.model, batch)
        loss.backward()
        return loss.item()

    def _loss(self, batch: tuple) -> float:
        if self.parallel is not None:
            return self.parallel.loss(batch)
        return self.task.loss(self.model, batch).item()

    def evaluate(self) -> dict[str, float]:
        """Mean loss on `eval_batches` fixed validation batches (the same at every call)."""
        self.model.eval()
        rng = np.random.default_rng([self.config.seed, 1])
        with no_grad():
            losses = [
                self._loss(self.task.batch("val", self.config.batch_size, rng))
                for _ in range(self.config.eval_batches)
            ]  # fmt: skip
        self.model.train()
        result = {"val_loss": float(np.mean(losses))}
        chars_per_token = getattr(self.task, "chars_per_token", None)
        if chars_per_token:
            result["val_loss_per_char"] = result["val_loss"] / chars_per_token
        return result

    # ------------------------------------------------------------------ the run
    def run(self, until: int | None = None) -> dict[str, Any]:
        """Train to step `until` (config.steps by default); returns the last metrics row.

        Raises TrainingInterruptedError after saving on Ctrl-C, TrainingDivergedError on a NaN loss.
        """
        until = self.config.steps if until is None else until
        if self.out_dir is not None:
            self._prepare_out_dir()
        bar = _progress_bar(self.progress, total=until, initial=self.step)
        row: dict[str, Any] = self.history[-1] if self.history else {"step": self.step}
        workers = self.parallel or contextlib.nullcontext()  # closed when the run ends
        with _interrupt_flag() as interrupted, bar, workers:
            while self.step < until:
                row = self.train_step()
                if self.step % self.config.eval_interval == 0 or self.step == until:
                    row.update(self.evaluate())
                self._record(row)
                bar.update(1)
                bar.set_postfix(_postfix(row), refresh=False)
                if "val_loss" in row:
                    self.save()
                if interrupted.is_set():
                    self.save()
                    raise TrainingInterruptedError(f"interrupted after step {self.step}")
        return row

    def _record(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        if self.out_dir is not None:
            with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")

    def _prepare_out_dir(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.tokenizer is not None and self.step == 0:
            save_tokenizer(self.out_dir, self.tokenizer)
        kept = "".join(json.dumps(row) + "\n" for row in self.history)
        atomic_write_bytes(self.out_dir / METRICS_FILE, kept.encode())  # drop rows past a resume

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        """Checkpoint and loss plot of the current step (nothing without an out_dir)."""
        if self.out_dir is None or self.last_saved_step == self.step:
            return
        training = {
            "train_config": self.config.to_dict(),
            "schedule": self.schedule.state_dict(),
            "data_generator": self.rng.bit_generator.state,
            "run_info": self.run_info,
        }
        save_checkpoint(self.out_dir, self.model, self.step, self.optimizer, training)
        self.last_saved_step = self.step
        plot_losses(self.history, self.out_dir / PLOT_FILE)

    @classmethod
    def resume(
        cls,
        out_dir: str | Path,
        task_from: Callable[[Checkpoint], Any],
        steps: int | None = None,
        progress: bool = True,
        checkpoint: Checkpoint | None = None,
    ) -> Trainer:
        """The run saved in `out_dir`, ready to continue to `steps` (its own by default).

        `task_from(checkpoint)` rebuilds the task (the data) from the checkpoint's tokenizer
        and run_info. Weights, optimizer moments, schedule and every random generator come
        back as they were, so the continued run equals one that was never stopped.
        `checkpoint` is out_dir's, if the caller has read it already.
        """
        checkpoint = checkpoint or load_checkpoint(out_dir)
        training = checkpoint.training
        if checkpoint.optimizer_state is None or "train_config" not in training:
            raise ValueError(f"{checkpoint.path} holds weights only: it cannot resume a run")
        settings = dict(training["train_config"])
        if steps is not None:
            settings["steps"] = steps
        settings["lr_decay_steps"] = TrainConfig(**training["train_config"]).decay_steps
        config = TrainConfig.from_dict(settings)
        trainer = cls(checkpoint.model, task_from(checkpoint), config, out_dir,
                      checkpoint.tokenizer, progress, training.get("run_info"))  # fmt: skip
        trainer.optimizer.load_state_dict(checkpoint.optimizer_state)
        trainer.schedule.load_state_dict(training["schedule"])
        trainer.rng.bit_generator.state = training["data_generator"]
        checkpoint.restore_generators()
        trainer.step = trainer.last_saved_step = checkpoint.step
        trainer.history = [r for r in read_metrics(out_dir) if r["step"] <= checkpoint.step]
        return trainer


def read_metrics(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of `out_dir`/metrics.jsonl (an empty list if there is none)."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# ===================================================================== around the loop
@contextlib.contextmanager
def _interrupt_flag() -> Iterator[threading.Event]:
    """While inside, Ctrl-C sets the yielded flag instead of raising mid-step (a second
    Ctrl-C raises at once). Outside the main thread, signals cannot be caught: no-op."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, n: int) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass


def _progress_bar(show: bool, total: int, initial: int) -> Any:
    if not show:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="step", mininterval=0.5)


def _postfix(row: dict[str, Any]) -> dict[str, str]:
    shown = {"loss": f"{row['loss']:.3f}", "tok/s": f"{row['tokens_per_sec']:,.0f}"}
    if "val_loss" in row:
        shown["val"] = f"{row['val_loss']:.3f}"
    return shown


def plot_losses(history: list[dict[str, Any]], path: str | Path) -> None:
    """Training loss (each step, and its moving average) and validation loss against the
    step, written atomically as a PNG. Uses a figure of its own (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.array([row["step"] for row in history])
    losses = np.array([row["loss"] for row in history])
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="training (step)")
    if len(losses) >= 20:
        window = max(len(losses) // 50, 10)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(
            steps[window - 1 :], smooth, color="tab:blue", label=f"training ({window}-step mean)"
        )
    evaluated = [row for row in history if "val_loss" in row]
    if evaluated:
        ax.plot([r["step"] for r in evaluated], [r["val_loss"] for r in evaluated], "o-",
                color="tab:orange", label="validation")  # fmt: skip
    ax.set_title("Loss during training")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
