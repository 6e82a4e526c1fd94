"""The training loop: one readable loop over iterations, for any method, with AMP, DDP and exact resume.

Per iteration ``step`` (0-based):

1. set the learning rate of every parameter group from the warm-up + poly schedule;
2. ``method.training_step(batch, step)`` (through DDP when distributed; see
   :mod:`scribbleseg.methods.contract`) returns the loss, its named parts and the method's phase;
3. if the loss is not finite, the step is skipped: the method's buffers (BatchNorm statistics, PFA's
   bank, ...) are restored from the snapshot taken before the step, nothing is updated, the step is
   counted, and training stops with a clear message after ``train.max_nonfinite_in_a_row`` in a row;
4. backward (with a GradScaler for fp16), optional gradient clipping, AdamW step.

Every ``log_interval`` steps the averaged loss parts go to ``metrics.jsonl`` / TensorBoard; every
``val_interval`` steps the validation set is scored; every ``checkpoint_interval`` steps, at the end and
after a SIGINT / SIGTERM (:mod:`scribbleseg.engine.runtime.interrupts`) the ``last`` pair is written as one
consistent save (:mod:`scribbleseg.engine.runs.last_checkpoint`), and ``best.safetensors`` whenever
``train.best_metric`` improves; at the end the curves go to ``figures/``. Only rank 0 writes files, into a
run folder it opened and locked before anything was built (:mod:`scribbleseg.engine.runs.folder`); a start
that fails before its first step leaves no half-made folder behind.

Host syncs per step: the finiteness check of the loss (one scalar) and the method's own (see its
module); logged values are accumulated on the device and read at log intervals only.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scribbleseg.atomic_files import atomic_write_text
from scribbleseg.engine.runs.checkpoint import (
    load_weights_into,
    read_checkpoint_header,
    read_checkpoint_tensors,
    save_model_checkpoint,
)
from scribbleseg.engine.runtime.compilation import compile_for_training
from scribbleseg.engine.config.schema import ExperimentConfig
from scribbleseg.engine.build.data_factory import (
    build_datasets,
    build_train_loader,
    iterations_per_epoch,
    with_absolute_data_root,
)
from scribbleseg.engine.runtime.distributed import (
    DistContext,
    barrier,
    init_distributed,
    mean_over_ranks,
    shutdown_distributed,
    wrap_model,
)
from scribbleseg.engine.evaluation.evaluate import evaluate, evaluate_class_sources
from scribbleseg.engine.evaluation.eval_settings import extra_class_sources, validation_settings
from scribbleseg.engine.runtime.interrupts import (
    StopSignals,
    TrainingInterrupted,
    resume_command,
    signal_name,
    stop_signal_everywhere,
)
from scribbleseg.engine.runs.last_checkpoint import load_resume_point, save_last_checkpoint
from scribbleseg.engine.build.data_check import check_run_data
from scribbleseg.engine.build.method_factory import build_method
from scribbleseg.engine.training.optim import WarmupPolySchedule, build_optimizer
from scribbleseg.engine.training.run_length import resolve_run
from scribbleseg.engine.figures.run_figures import plot_run
from scribbleseg.engine.runs.folder import RunFolder, describe_last_checkpoint, open_run_folder
from scribbleseg.engine.runs.layout import RunLayout, state_path_for
from scribbleseg.engine.runs.run_logging import RunLogger
from scribbleseg.engine.runtime.seeding import capture_rng_state, restore_rng_state, sample_seed, seed_everything
from scribbleseg.errors import CheckpointError, ScribblesegError
from scribbleseg.methods import TOTAL_LOSS, StepResult, TrainBatch

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDivergedError(ScribblesegError):
    """The loss stayed NaN / inf for too many steps in a row."""


@dataclass
class TrainResult:
    """What :func:`train` returns (rank 0 has the metrics; other ranks get the same paths)."""

    run_dir: Path
    steps: int
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_value: float | None
    final_metrics: dict[str, float] = field(default_factory=dict)
    skipped_nonfinite: int = 0
    is_main: bool = True


class TrainingForward(nn.Module):
    """Puts ``method.training_step`` behind ``forward`` so that DDP syncs its gradients.

    ``forward(batch, iteration) -> (loss, parts, phase)``.
    """

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: TrainBatch, iteration: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], Any]:
        result: StepResult = self.method.training_step(batch, iteration)
        return result.loss, result.parts, result.phase


class Trainer:
    """Builds everything from a config and runs the loop; see the module docstring.

    Args:
        cfg: the resolved experiment config.
        work_dir: run folder (created, locked and checked by :func:`~scribbleseg.engine.runs.folder.open_run_folder`).
        resume: continue from ``<work_dir>/checkpoints/last.*``.
        overwrite: start afresh in a folder that holds a run (its files are deleted) or other files.
        stop_after: stop (after checkpointing) once this many steps ran in this session, as if killed;
            used to test resuming with an unchanged schedule.
        skip_bad: train without the samples whose files fail the data check (:mod:`~scribbleseg.engine.build.data_check`)
            instead of stopping before step 0.
    """

    def __init__(self, cfg: ExperimentConfig, work_dir: str | Path, resume: bool = False, overwrite: bool = False,
                 stop_after: int | None = None, skip_bad: bool = False) -> None:
        self.cfg = with_absolute_data_root(cfg)  # config.yaml / checkpoints work from any folder
        self.ctx: DistContext = init_distributed(cfg.train.device)
        self.run_dir = Path(work_dir)
        self.layout = RunLayout(self.run_dir)
        self.resume = resume
        self.stop_after = stop_after
        self.skip_bad = skip_bad
        # rank 0 creates, locks and checks the folder before anything is built (see run_folder)
        self.folder: RunFolder | None = open_run_folder(self.run_dir, resume, overwrite) if self.ctx.is_main else None
        try:
            self._setup()
        except BaseException:
            self._abandon()
            raise

    # ------------------------------------------------------------------------------------------ setup
    def _setup(self) -> None:
        """Data, model, optimiser, schedule, and the resume state; writes nothing into the run folder."""
        cfg = self.cfg
        if self.resume and not self.layout.last_state.exists() and not self.layout.last.exists():
            raise CheckpointError(f"nothing to resume: {self.layout.last} does not exist")
        self.device = self.ctx.device
        seed_everything(cfg.train.seed + self.ctx.rank, cfg.train.deterministic)

        self.info, self.train_set, self.val_set = build_datasets(cfg)
        splits = [(cfg.data.train_split, self.train_set.base)] + \
            ([(cfg.data.val_split, self.val_set)] if self.val_set is not None else [])
        self.data_check = check_run_data(splits, self.info, cfg.data.root, self.layout.data_check, self.skip_bad,
                                         show=self.ctx.is_main and cfg.train.progress, write=self.ctx.is_main)
        for warning in self.data_check.warnings if self.ctx.is_main else ():
            print(f"warning: {warning}", flush=True)
        self.iters_per_epoch = iterations_per_epoch(self.train_set, cfg.data, self.ctx.world_size)
        self.cfg, self.total_steps, note = resolve_run(cfg, self.iters_per_epoch, self.val_set is not None)
        cfg = self.cfg  # epochs-based intervals and the method's warm-up as iterations
        if note and self.ctx.is_main:
            print(f"note: {note}", flush=True)

        self.model = build_method(cfg, self.info.num_classes, load_pretrained=not self.resume,
                                  ignore_index=self.info.ignore_index).to(self.device)
        self.compiled = compile_for_training(self.model, cfg.train, self.device)  # None unless train.compile
        self.loss_names = self.model.loss_names()
        self.optimizer = build_optimizer(self.model, cfg.optim, cfg.model)
        self.schedule = WarmupPolySchedule(cfg.optim, self.total_steps, self.iters_per_epoch)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype is torch.float16)

        self.step = 0
        self.warned: set[str] = set()  # keys of the method's training warnings already printed
        self.phase_name: str | None = None
        self.skipped_total = 0
        self.best_value: float | None = None
        if self.resume:
            self._load_resume_state()
        self.forward = wrap_model(TrainingForward(self.model), self.ctx)

    def _abandon(self) -> None:
        """A start that failed before its first step: leave no half-made run folder (rank 0)."""
        if self.folder is not None:
            if self.resume:
                self.folder.close()
            else:
                self.folder.abandon()

    def close(self) -> None:
        """Release the run folder's lock (idempotent)."""
        if self.folder is not None:
            self.folder.close()

    def _amp_dtype(self) -> torch.dtype | None:
        """Autocast dtype, or None (fp32). AMP runs on CUDA only; on CPU the setting is ignored."""
        if self.cfg.optim.amp == "none" or self.device.type != "cuda":
            return None
        return AMP_DTYPES[self.cfg.optim.amp]

    def _load_resume_state(self) -> None:
        """Weights, optimiser, scaler, RNG, step and best value from the ``checkpoints/last`` pair."""
        last = self.layout.last
        point = load_resume_point(last, expect=self.cfg, num_classes=self.info.num_classes,
                                  repair=self.ctx.is_main)
        if point.repaired:
            print(f"note: {point.repaired}", flush=True)
        load_weights_into(self.model, {k: v.to(self.device) for k, v in point.tensors.items()}, last)
        state = point.state
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{state_path_for(last)}: optimiser state does not fit this model ({err})") from err
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = point.step
        self.skipped_total = int(state.get("skipped_nonfinite", 0))
        best = state.get("best_value")
        self.best_value = None if best is None else float(best)
        restore_rng_state(state["rng"])
        if self.ctx.is_distributed:  # every rank resumes from rank 0's state: give each its own stream again
            torch.manual_seed(sample_seed(self.cfg.train.seed, self.step, self.ctx.rank))
        if self.step >= self.total_steps and self.ctx.is_main:
            print(f"run in {self.run_dir} already finished ({self.step} of {self.total_steps} steps)")

    # ------------------------------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        """Train until ``total_steps``, ``stop_after`` steps in this session, or a stop signal (then
        :class:`~scribbleseg.engine.runtime.interrupts.TrainingInterrupted` is raised after saving ``last``)."""
        session_start = self.step
        try:
            if self.folder is not None:
                self.folder.begin(self.cfg.name, {"skipped_bad_files": self.data_check.skipped_files}
                                  if self.data_check.skipped_files else None)
                atomic_write_text(self.layout.config, self.cfg.to_yaml())
            logger = RunLogger(self.run_dir, self.total_steps, self.step, enabled=self.ctx.is_main,
                               progress=self.cfg.train.progress)
        except BaseException:
            self._abandon()
            raise
        stop = StopSignals(announce=self.ctx.is_main)
        try:
            with stop:
                last_metrics = self._loop(logger, stop, session_start)
        except BaseException as err:
            logger.close(quiet=True)
            if self.step == session_start:  # nothing was trained: no half-made run folder stays
                self._abandon()
            if isinstance(err, KeyboardInterrupt):  # a second signal: stop at once, without saving
                signum = stop.aborted_by or signal.SIGINT
                raise TrainingInterrupted(signum, self._stop_message(signum, saved=False), self.ctx.is_main) from None
            raise
        finally:
            logger.close()
        if self.ctx.is_main and self.step >= self.total_steps:
            plot_run(self.run_dir)  # figures/{loss,lr,miou}.png from metrics.jsonl
        barrier(self.ctx)
        best = self.layout.best if self.layout.best.exists() else None
        return TrainResult(self.run_dir, self.step, self.layout.last, best, self.best_value, last_metrics,
                           self.skipped_total, self.ctx.is_main)

    def _loop(self, logger: RunLogger, stop: StopSignals, session_start: int) -> dict[str, float]:
        """The iterations (see the module docstring); returns the metrics of the last validation."""
        cfg = self.cfg.train
        sums = torch.zeros(len(self.loss_names), device=self.device)
        counted = torch.zeros((), device=self.device)
        nonfinite_in_a_row = 0
        last_metrics: dict[str, float] = {}
        tick, tick_step = time.perf_counter(), self.step
        while self.step < self.total_steps:
            epoch, start_batch = divmod(self.step, self.iters_per_epoch)
            loader = build_train_loader(self.train_set, self.cfg.data, cfg.seed, epoch, start_batch,
                                        self.ctx.rank, self.ctx.world_size, pin_memory=self.device.type == "cuda")
            for loaded in loader:
                lr = self.schedule.apply(self.optimizer, self.step)
                parts, self.phase_name, finite = self._train_step(TrainBatch.from_loader(loaded))
                self.step += 1
                logger.advance()
                if finite:
                    nonfinite_in_a_row = 0
                    sums += torch.stack([parts[k].float() for k in self.loss_names])
                    counted += 1
                else:
                    nonfinite_in_a_row += 1
                    self.skipped_total += 1
                    logger.message(f"step {self.step}: non-finite loss, step skipped ({nonfinite_in_a_row} in a row)")
                    if nonfinite_in_a_row >= cfg.max_nonfinite_in_a_row:
                        raise TrainingDivergedError(self._diverged_message(nonfinite_in_a_row))
                if self.step % cfg.log_interval == 0 or self.step == self.total_steps:
                    now = time.perf_counter()
                    self._log(logger, sums, counted, lr, self.phase_name, (self.step - tick_step) / (now - tick))
                    sums.zero_()
                    counted.zero_()
                    tick, tick_step = now, self.step
                finished = self.step >= self.total_steps
                stopping = self.stop_after is not None and self.step - session_start >= self.stop_after
                signum = None if finished else stop_signal_everywhere(stop.requested, self.ctx)
                if cfg.val_interval and (self.step % cfg.val_interval == 0 or finished):
                    last_metrics = self._validate(logger)
                if (cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0) or finished or stopping \
                        or signum:
                    self._save_last(self.phase_name, last_metrics)
                if signum:
                    raise TrainingInterrupted(signum, self._stop_message(signum, saved=True), self.ctx.is_main)
                if finished or stopping:
                    return last_metrics
        return last_metrics

    def _diverged_message(self, in_a_row: int) -> str:
        """What happened, what to change, and the last checkpoint that exists and holds finite tensors."""
        head = (f"training diverged: the loss was NaN/inf for {in_a_row} steps in a row (up to step {self.step}); "
                "lower optim.lr, set optim.grad_clip, or use optim.amp=bf16 instead of fp16. ")
        last = self.layout.last
        try:
            read_checkpoint_tensors(last)  # missing, corrupt or NaN / inf tensors: not good
            step = read_checkpoint_header(last)[1].get("step")
        except CheckpointError:
            step = None
        if step is None:
            return head + (f"No checkpoint was saved before it diverged (train.checkpoint_interval="
                           f"{self.cfg.train.checkpoint_interval}): there is none to resume from")
        command = resume_command(self.layout.config, self.run_dir, self.ctx.world_size)
        return head + f"Last good checkpoint: {last} (step {step}); continue from it with: {command} --set optim.lr=..."

    def _stop_message(self, signum: int, saved: bool) -> str:
        """Where the run stopped, which checkpoint holds it, and the exact command that continues it."""
        name = signal_name(signum)
        last = self.layout.last
        if saved:
            head = f"stopped by {name} after step {self.step} of {self.total_steps}: saved {last}"
        elif last.is_file():
            head = (f"stopped at once by a second {name} at step {self.step} of {self.total_steps}, without saving; "
                    f"the last checkpoint is {describe_last_checkpoint(self.layout)}")
        else:
            return (f"stopped at once by a second {name} at step {self.step} of {self.total_steps}, without saving; "
                    "no checkpoint was saved, nothing to resume")
        return f"{head}\nresume with: {resume_command(self.layout.config, self.run_dir, self.ctx.world_size)}"

    def _train_step(self, batch: TrainBatch) -> tuple[dict[str, torch.Tensor], str | None, bool]:
        """One optimisation step; returns (detached loss parts, phase, whether the loss was finite)."""
        batch = batch.to(self.device, non_blocking=True)
        snapshot = self.model.snapshot()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            loss, parts, phase = self.forward(batch, self.step)
        if not self._all_finite(loss):
            self.model.restore(snapshot)  # the skipped step leaves no trace in BN statistics, bank, ...
            # zero gradients through every parameter, so that DDP's reducer completes this iteration
            sum((param * 0).sum() for param in self.model.parameters() if param.requires_grad).backward()
            self.optimizer.zero_grad(set_to_none=True)
            return parts, phase, False
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return parts, phase, True

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank (all ranks then skip or step together)."""
        finite = torch.isfinite(loss.detach()).float()
        return bool(mean_over_ranks(finite, self.ctx) == 1.0)

    # ------------------------------------------------------------------------------- logging, eval, save
    def _log(self, logger: RunLogger, sums: torch.Tensor, counted: torch.Tensor, lr: float, phase: str | None,
             its_per_s: float) -> None:
        """Average the accumulated loss parts over the interval and the ranks, write one row.

        Loss parts are logged as ``loss`` (the total) and ``loss_<part>``; the method's phase and its
        :meth:`training_summary` join the row.
        """
        packed = mean_over_ranks(torch.cat([sums, counted.reshape(1)]), self.ctx).tolist()
        count = max(packed[-1], 1.0)
        row: dict[str, Any] = {"step": self.step, "epoch": round(self.step / self.iters_per_epoch, 4)}
        if phase is not None:
            row["phase"] = phase
        row["lr"] = lr
        for name, value in zip(self.loss_names, packed[:-1]):
            row["loss" if name == TOTAL_LOSS else f"loss_{name}"] = value / count
        row.update(self.model.training_summary())
        row.update({"skipped_nonfinite": self.skipped_total, "it_per_s": round(its_per_s, 3)})
        logger.log_train(row)
        for key, text in self.model.training_warnings(self.step, self.total_steps).items():
            if key not in self.warned:  # each warning once per run
                self.warned.add(key)
                logger.message(f"warning: {text}")

    def _validate(self, logger: RunLogger) -> dict[str, float]:
        """Score the validation set (``evaluate`` shards it over ranks and all-reduces); update ``best``.

        Heads that cannot run yet (e.g. PFA's ``global`` before its bank is full) are skipped by ``evaluate``.
        """
        rng = capture_rng_state()  # evaluation must not shift the training RNG streams
        try:
            assert self.val_set is not None  # built whenever train.val_interval > 0
            settings = validation_settings(self.cfg.eval, self.info.class_names, amp=self.amp_dtype is not None)
            results = evaluate(self.model, self.val_set, settings)
            extra = self._validate_extra_sources(results, settings)
        finally:
            self.model.train()
            restore_rng_state(rng)
        metrics = {f"val/{head}/miou": float(result.miou) for head, result in results.items()}
        metrics.update(extra)
        logger.log_eval(self.step, metrics)
        value = metrics.get(self.cfg.train.best_metric)
        if value is not None and (self.best_value is None or value > self.best_value):
            self.best_value = value
            if self.ctx.is_main:
                save_model_checkpoint(self.layout.best, self.model, self.cfg,
                                      self._meta(self.phase_name, metrics))
        return metrics

    def _validate_extra_sources(self, results, settings) -> dict[str, float]:  # type: ignore[no-untyped-def]
        """``val/<head>@<source>/miou`` for ``eval.extra_class_sources`` and ``val/classifier/map``."""
        metrics: dict[str, float] = {}
        if results.classifier is not None:
            metrics["val/classifier/map"] = float(results.classifier.map)
        main = settings.class_source
        extra = [source for source in extra_class_sources(self.cfg.eval, self.info.class_names)
                 if source.spec != main.spec]
        table = evaluate_class_sources(self.model, self.val_set, extra, settings,
                                       known={main.spec: results}) if extra else {}
        for spec, by_head in table.items():
            metrics.update({f"val/{head}@{spec}/miou": float(result.miou) for head, result in by_head.items()})
        return metrics

    def _meta(self, phase: str | None, metrics: dict[str, float]) -> dict[str, Any]:
        """The meta record stored in a checkpoint's safetensors header."""
        return {
            "step": self.step,
            "epoch": round(self.step / self.iters_per_epoch, 4),
            "total_steps": self.total_steps,
            "phase": phase,
            "num_classes": self.info.num_classes,
            "class_names": list(self.info.class_names),
            "palette": [list(map(int, color)) for color in self.info.palette],
            "ignore_index": int(self.info.ignore_index),
            "metrics": metrics,
            "best_metric": self.cfg.train.best_metric,
            "best_value": self.best_value,
        }

    def _save_last(self, phase: str | None, metrics: dict[str, float]) -> None:
        """The ``last`` pair (rank 0): weights and resume state as one consistent save."""
        if self.ctx.is_main:
            save_last_checkpoint(self.layout.last, self.model, self.cfg, self._meta(phase, metrics), {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                "rng": capture_rng_state(),
                "skipped_nonfinite": self.skipped_total,
                "best_value": self.best_value,
            })
        barrier(self.ctx)


def train(cfg: ExperimentConfig, work_dir: str | Path, resume: bool = False, overwrite: bool = False,
          stop_after: int | None = None, skip_bad: bool = False) -> TrainResult:
    """Train ``cfg`` into ``work_dir`` (see :class:`Trainer`); leaves the process group afterwards."""
    try:
        trainer = Trainer(cfg, work_dir, resume=resume, overwrite=overwrite, stop_after=stop_after, skip_bad=skip_bad)
        try:
            return trainer.run()
        finally:
            trainer.close()
    finally:
        shutdown_distributed()
