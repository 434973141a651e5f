"""Where the heavy stages run: one process by default, many processes / GPUs / nodes through Lightning
Fabric (over ``torch.distributed``; gloo on CPUs, NCCL on GPUs).

Why Fabric: it is the paper's own ecosystem (PyTorch), it adds no training loop of its own (our loops
stay ours: per-sample early stop, weighted sampling), and one object gives the launcher (a subprocess
per device, or ``torchrun`` / ``fabric run`` / SLURM across nodes), collectives (barrier,
all-gather), DDP for data-parallel training and mixed precision (``bf16-mixed``) - so the same code runs
on a laptop CPU and on 8 GPUs x N nodes. Ray or Dask would add a scheduler we do not need; a home-made
``torch.multiprocessing`` pool would re-implement the launcher and the collectives.

``Engine()`` with no arguments is a single local process with no Fabric at all (what the library uses
when called from Python); the command line always builds its engine through :func:`make_engine`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import typing
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import torch

from .errors import MSG_NO_GPU, ParameterError
from .validation import check_int, check_option

if TYPE_CHECKING:
    from lightning.fabric.strategies import Strategy

ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]  # Fabric's names, the ones offered here
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)


@dataclass(frozen=True)
class EngineConfig:
    """What the user asked for: ``--accelerator``, ``--devices``, ``--num-nodes``, ``--strategy``,
    ``--precision`` (Fabric's own names)."""

    accelerator: str = field(default="cpu", metadata=dict(help="cpu, gpu, cuda or auto", choices=ACCELERATORS))
    devices: int = field(default=1, metadata=dict(help="processes (CPU) or GPUs per node", type=int))
    num_nodes: int = field(default=1, metadata=dict(
        help="nodes (start the command on each with torchrun / fabric run / SLURM)", type=int))
    strategy: str = field(default="auto", metadata=dict(help="Fabric strategy (auto: DDP with several processes)"))
    precision: str = field(default="32-true", metadata=dict(
        help="32-true, bf16-mixed or 16-mixed (mixed: attacks in autocast, success re-judged in float32)",
        choices=PRECISIONS))

    def __post_init__(self) -> None:
        check_option("accelerator", self.accelerator, ACCELERATORS)
        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise ParameterError.of(MSG_NO_GPU, accelerator=self.accelerator)  # before any folder is made
        check_option("precision", self.precision, PRECISIONS)
        if self.strategy != "auto":  # Fabric's names (its registry), refused here rather than by Fabric's traceback
            from lightning.fabric.strategies import STRATEGY_REGISTRY

            check_option("strategy", self.strategy, ["auto", *STRATEGY_REGISTRY.available_strategies()])
        check_int("devices", self.devices, minimum=1)
        check_int("num_nodes", self.num_nodes, minimum=1)


class Engine:
    """Rank, world size, device, collectives and autocast; a no-op single process without ``fabric``."""

    def __init__(self, fabric=None, config: EngineConfig | None = None) -> None:
        self.fabric = fabric
        self.config = config or EngineConfig()

    @property
    def rank(self) -> int:
        return self.fabric.global_rank if self.fabric else 0

    @property
    def world_size(self) -> int:
        return self.fabric.world_size if self.fabric else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return self.fabric.device if self.fabric else torch.device("cpu")

    @property
    def mixed_precision(self) -> bool:
        return self.config.precision != "32-true"

    def barrier(self) -> None:
        if self.fabric is not None and self.world_size > 1:
            self.fabric.barrier()

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.fabric is None or self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def autocast(self):
        """Fabric's autocast for ``bf16-mixed`` / ``16-mixed``; a no-op in full precision."""
        return self.fabric.autocast() if self.fabric is not None and self.mixed_precision else contextlib.nullcontext()

    def data_parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` wrapped for data-parallel training (DDP through Fabric; gradients are averaged over
        the ranks in ``backward``); the module itself when there is one process."""
        if self.fabric is None or self.world_size == 1:
            return module
        return self.fabric.setup_module(module)

    def backward(self, loss: torch.Tensor) -> None:
        if self.fabric is None:
            loss.backward()
        else:
            self.fabric.backward(loss)

    def shard(self, items: list) -> list:
        """This rank's share: items ``rank, rank + world, ...`` (disjoint, together all of them)."""
        return items[self.rank :: self.world_size]

    def describe(self) -> dict:
        return {**asdict(self.config), "world_size": self.world_size, "backend": (
            torch.distributed.get_backend() if self.world_size > 1 and torch.distributed.is_initialized() else None)}


def make_engine(config: EngineConfig | None = None) -> Engine:
    """Build and launch a Fabric engine. With several devices the launcher starts the other processes
    (each re-runs the same command) unless they were started by ``torchrun`` / ``fabric run`` / SLURM."""
    from lightning.fabric import Fabric

    cfg = config or EngineConfig()
    if os.environ.get("LT_CLI_USED"):  # started by `fabric run`: its options decide, ours must not clash
        env = os.environ
        cfg = EngineConfig(accelerator={"cuda": "gpu"}.get(env.get("LT_ACCELERATOR", "cpu"), env.get("LT_ACCELERATOR", "cpu")),
                           devices=int(env.get("LT_DEVICES", "1")), num_nodes=int(env.get("LT_NUM_NODES", "1")),
                           strategy=env.get("LT_STRATEGY", "auto"), precision=env.get("LT_PRECISION", "32-true"))
        return Engine(Fabric(), cfg)  # the processes exist already; Fabric sets up the process group itself
    strategy: str | Strategy = cfg.strategy
    if cfg.devices * cfg.num_nodes > 1 and strategy in ("auto", "ddp"):
        from lightning.fabric.strategies import DDPStrategy

        # long single-rank stages (e.g. pre-training) must not time out the other ranks' barrier
        strategy = DDPStrategy(timeout=_dt.timedelta(hours=48))
    accel = "cuda" if cfg.accelerator == "gpu" else cfg.accelerator
    fabric = Fabric(accelerator=accel, devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=strategy,
                    precision=typing.cast(Precision, cfg.precision))  # one of PRECISIONS: EngineConfig checks
    fabric.launch()
    return Engine(fabric, cfg)


__all__ = ["Engine", "EngineConfig", "make_engine"]
