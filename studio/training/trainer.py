"""``python -m studio train``: one stage of CHROMM's training, on one process or several (``torchrun``).

Each optimiser step takes ``batch_size`` instants per process (their gradients summed, then averaged
across processes by DistributedDataParallel), under bf16 autocast on CUDA. The data order of an epoch
is a permutation drawn from the seed and the epoch alone, shared out by rank, so a resumed run reads
exactly what an uninterrupted one would; the schedule (warm-up, cosine decay, the head–pelvis scale
adjustment from half-way) follows the epochs, and ``--max-steps`` / ``--max-minutes`` only cut the run.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from core.body.tracks import load_body_model
from core.errors import InputError
from core.nets.chromm.checkpoint import load_chromm, save_chromm
from core.nets.chromm.model import Chromm, ChrommSizes
from studio.training.batch import TrainingExample, training_example
from studio.training.config import TrainConfig
from studio.training.datasets import open_dataset
from studio.training.encoded import EncodedCache
from studio.training.metrics_log import MetricsLog
from studio.training.run_state import Position, latest_state, load_state, save_state
from studio.training.sample import MultiViewSample
from studio.training.stages import StageStep, checkpoint_blocks, freeze

START_FILE = "start.safetensors"


@dataclass(frozen=True)
class Processes:
    """This process's place among the run's (torchrun's environment; one process without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @staticmethod
    def from_environment() -> Processes:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return Processes()
        return Processes(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        return self.rank == 0


def train(config: TrainConfig) -> Path:
    """Run (or resume) the stage ``config`` describes; returns the network's checkpoint file."""
    processes = Processes.from_environment()
    device = _device(config.device, processes)
    if processes.world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, processes, device)
    finally:
        if processes.world > 1:
            dist.destroy_process_group()


def _train(config: TrainConfig, processes: Processes, device: torch.device) -> Path:
    out = Path(config.out)
    resuming = (out / "config.json").is_file()
    if resuming:
        config.check_resumable(out)
    data = open_dataset(config.data)
    validation = open_dataset(config.val_data) if config.val_data else None
    steps_per_epoch = len(data) // (config.batch_size * processes.world)
    if steps_per_epoch == 0:
        raise InputError(
            f"{config.data}: {len(data)} samples are fewer than one step's "
            f"{config.batch_size} × {processes.world} processes"
        )
    torch.manual_seed(config.seed + processes.rank)
    model = _start_network(config, out, resuming, processes, device)
    trained = freeze(model, config.stage)
    if config.gradient_checkpointing:
        checkpoint_blocks(model)
    cache = EncodedCache(model, config.feature_cache) if config.feature_cache and config.stage else None
    step = StageStep(model, load_body_model(config.body, str(device)), config.stage, config.weights, cache)
    optimizer = torch.optim.AdamW(trained.values(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule_steps = config.epochs * steps_per_epoch
    factor = _warmup_cosine(config.warmup_steps, schedule_steps)
    run = _Run(
        config,
        processes,
        out,
        model,
        trained,
        step,
        DistributedDataParallel(step, find_unused_parameters=True) if processes.world > 1 else step,
        optimizer,
        torch.optim.lr_scheduler.LambdaLR(optimizer, factor),
        data,
        validation,
        schedule_steps,
        min(schedule_steps, config.max_steps or schedule_steps),
    )
    state = latest_state(out)
    position = Position() if state is None else load_state(state, trained, optimizer, run.scheduler)
    return run.go(position)


@dataclass
class _Run:
    """Everything one stage's loop works with."""

    config: TrainConfig
    processes: Processes
    out: Path
    model: Chromm
    trained: dict[str, torch.nn.Parameter]
    step: StageStep
    wrapped: torch.nn.Module
    """``step``, or ``step`` in DistributedDataParallel."""
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    data: Sequence[MultiViewSample]
    validation: Sequence[MultiViewSample] | None
    schedule_steps: int
    last_step: int

    def go(self, position: Position) -> Path:
        """Train from ``position`` to the last step or the time bound; the network's file."""
        config, main = self.config, self.processes.main
        network = self.out / "chromm.safetensors"
        if network.is_file() and (position.step >= self.last_step or self._out_of_time(position)):
            return network  # a finished run: nothing to add
        log = MetricsLog(self.out, enabled=main)
        progress = tqdm(
            total=self.last_step, initial=position.step, desc=f"stage {config.stage}", disable=not main
        )
        started = time.monotonic() - position.seconds
        network = self.out / "chromm.safetensors"
        try:
            while position.step < self.last_step:
                for examples in _epoch_batches(self.data, self.model.sizes, config, self.processes, position):
                    position, terms = self._one_step(examples, position, started)
                    progress.update()
                    rate = position.step / max(position.seconds, 1e-9)
                    progress.set_postfix(loss=f"{terms['total']:.4f}", steps_per_s=f"{rate:.2f}")
                    self._record(log, position, terms)
                    out_of_time = (
                        config.max_minutes is not None and position.seconds >= 60 * config.max_minutes
                    )
                    finished = position.step >= self.last_step or out_of_time
                    if position.step % config.checkpoint_every == 0 or finished:
                        network = self._checkpoint(position)
                    if finished:
                        return network
                position = replace(position, epoch=position.epoch + 1, step_in_epoch=0)
            return network
        finally:
            progress.close()
            log.plot()
            log.close()

    def _scale_adjustment(self, position: Position) -> bool:
        """Whether the head–pelvis scale adjustment is on at ``position`` (from a share of the schedule)."""
        return position.step >= self.config.scale_adjustment_from * self.schedule_steps

    def _out_of_time(self, position: Position) -> bool:
        minutes = self.config.max_minutes
        return minutes is not None and position.seconds >= 60 * minutes

    def _one_step(
        self, examples: list[TrainingExample], position: Position, started: float
    ) -> tuple[Position, dict[str, float]]:
        scale_adjustment = self._scale_adjustment(position)
        device = next(self.model.parameters()).device
        terms = _optimiser_step(self.wrapped, examples, scale_adjustment, self.optimizer, device, self.config)
        self.scheduler.step()
        position = replace(
            position,
            step=position.step + 1,
            step_in_epoch=position.step_in_epoch + 1,
            seconds=time.monotonic() - started,
        )
        return position, terms | {"lr": self.scheduler.get_last_lr()[0]}

    def _record(self, log: MetricsLog, position: Position, terms: dict[str, float]) -> None:
        config = self.config
        if position.step % config.log_every == 0:
            log.write(position.step, "train", terms)
        if self.validation is not None and position.step % config.validate_every == 0:
            values = _validate(
                self.step, self.validation, self.model.sizes, config, self._scale_adjustment(position)
            )
            log.write(position.step, "val", values)

    def _checkpoint(self, position: Position) -> Path:
        network = self.out / "chromm.safetensors"
        if self.processes.main:
            network = save_state(self.out, self.model, self.trained, self.optimizer, self.scheduler, position)
        if self.processes.world > 1:
            dist.barrier()
        return network


def _device(name: str, processes: Processes) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", processes.local_rank)
    return torch.device("cpu")


def _start_network(
    config: TrainConfig, out: Path, resuming: bool, processes: Processes, device: torch.device
) -> Chromm:
    """The network the run starts from: the run's own start file when resuming; else ``--init``, or a
    fresh tiny network; written to ``DIR/start.safetensors`` with the run's config."""
    start = out / START_FILE
    if resuming and start.is_file():
        return load_chromm(start, str(device))
    if config.init is not None:
        model = load_chromm(config.init, str(device))
    elif config.preset == "tiny":
        model = Chromm(ChrommSizes.tiny()).to(device)
    else:
        raise InputError(
            "training at the paper's size starts from the official priors: build that network with "
            "python -m studio nets build-chromm and pass it as --init (or use --preset tiny)"
        )
    if config.translation is not None:
        model.sizes = replace(model.sizes, translation=config.translation)
    if processes.world > 1:  # every process starts from the same weights
        for parameter in model.parameters():
            dist.broadcast(parameter.data, src=0)
    if processes.main:
        out.mkdir(parents=True, exist_ok=True)
        save_chromm(model, start)
        config.save(out)
    return model


def _warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    return factor


def _epoch_order(count: int, seed: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(count, generator=generator)


def _epoch_batches(
    data: Sequence[MultiViewSample],
    sizes: ChrommSizes,
    config: TrainConfig,
    processes: Processes,
    position: Position,
) -> Iterator[list[TrainingExample]]:
    """This process's batches for the rest of the current epoch."""
    per_step = config.batch_size * processes.world
    steps = len(data) // per_step
    order = _epoch_order(len(data), config.seed, position.epoch)[: steps * per_step].reshape(steps, per_step)
    mine = order[position.step_in_epoch :, processes.rank :: processes.world].tolist()
    examples = _Examples(data, sizes)
    if config.workers == 0:
        return ([examples[i] for i in indices] for indices in mine)
    loader = torch.utils.data.DataLoader(
        examples, batch_sampler=mine, num_workers=config.workers, collate_fn=list, persistent_workers=False
    )
    return iter(loader)


class _Examples(torch.utils.data.Dataset):
    def __init__(self, data: Sequence[MultiViewSample], sizes: ChrommSizes):
        self._data, self._sizes = data, sizes

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> TrainingExample:
        return training_example(self._data[index], self._sizes)


def _optimiser_step(
    wrapped: torch.nn.Module,
    examples: list[TrainingExample],
    scale_adjustment: bool,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    config: TrainConfig,
) -> dict[str, float]:
    """Forward and backward of each instant (gradients synchronised after the last), one update; the
    mean of each term over the instants."""
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for index, example in enumerate(examples):
        last = index == len(examples) - 1
        synchronised = getattr(wrapped, "no_sync", None)
        context = synchronised() if synchronised is not None and not last else contextlib.nullcontext()
        with context, _autocast(device, config.precision):
            terms = wrapped(example, scale_adjustment)
            (terms["total"] / len(examples)).backward()
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
    optimizer.step()
    return {name: value / len(examples) for name, value in sums.items()}


def _autocast(device: torch.device, precision: str):
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def _validate(
    step: StageStep,
    data: Sequence[MultiViewSample],
    sizes: ChrommSizes,
    config: TrainConfig,
    scale_adjustment: bool,
) -> dict[str, float]:
    """The mean of each term over the first ``val_samples`` validation instants."""
    sums: dict[str, float] = {}
    count = min(len(data), config.val_samples)
    device = next(step.model.parameters()).device
    with torch.no_grad(), _autocast(device, config.precision):
        for index in range(count):
            for name, value in step(training_example(data[index], sizes), scale_adjustment).items():
                sums[name] = sums.get(name, 0.0) + float(value)
    return {name: value / max(count, 1) for name, value in sums.items()}
