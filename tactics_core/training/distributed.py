"""Data-parallel training through torchrun: the process group, the collectives the trainer needs.

Why these pieces, and no launcher of our own:

* `torchrun` (`torch.distributed.run`) starts the ranks and sets RANK, WORLD_SIZE,
  LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT; `init()` reads them. One process (no
  WORLD_SIZE, or 1) gets `SINGLE` and the trainer runs exactly as before, with no process group.
* gloo on CPU, NCCL on CUDA (each rank on `cuda:LOCAL_RANK`).
* Every collective goes through `Dist` so a lost peer (a killed rank, a broken connection)
  becomes one `PeerLost` exception instead of a traceback or a hang: the trainer then ends
  with a final checkpoint from rank 0 (model and optimizer are identical on every rank after
  each step, so rank 0's copy is the run's).
* `agree(error)`: before the first step any rank may find a problem (a missing file, a
  different tokenizer); every rank learns it and raises the same one-line TacticsError, so
  no rank is left waiting at a barrier.
* `on_main(fn, ...)` / `main_first(fn, ...)`: a rank-0 side effect (a file written, the run
  folder claimed, the token cache built) comes with its agreement step in one call, so neither
  can be written without the other and every rank makes the same collectives.
* `DistHandle`: the Protocol the trainer and the launcher take; `Dist` (and `SINGLE`) is it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, ParamSpec, Protocol, TypeVar

from tactics_core.common.errors import TacticsError

P = ParamSpec("P")
R = TypeVar("R")

TIMEOUT_S = float(os.environ.get("TACTICS_DIST_TIMEOUT_S", "600"))


class PeerLost(RuntimeError):
    """A collective failed: another rank of the run ended or the connection broke."""


class DistHandle(Protocol):
    """What the trainer and the launcher ask of the process group (`Dist`, or `SINGLE` for one
    process); a test or a bench may pass its own. Every collective is made by every rank, in
    the same order."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    backend: str  # "gloo" | "nccl", "" for one process
    broken: bool  # a collective failed: no more collectives (rank 0 saves alone)

    @property
    def enabled(self) -> bool: ...

    @property
    def is_main(self) -> bool: ...

    def all_reduce_sum(self, values: list[float], device: str = "cpu") -> list[float]: ...

    def any(self, flag: bool, device: str = "cpu") -> bool: ...

    def gather_objects(self, obj: Any) -> list[Any]: ...

    def broadcast_object(self, obj: Any) -> Any: ...

    def barrier(self) -> None: ...

    def agree(self, error: BaseException | None) -> None: ...

    def on_main(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R | None: ...

    def main_first(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...


@dataclass
class Dist:
    """This process's place in the run's process group (`SINGLE` outside torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    backend: str = ""
    broken: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _call(self, what: str, fn, *args, **kwargs):
        if self.broken:
            raise PeerLost(f"the process group is broken (rank {self.rank}, at {what})")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # gloo/NCCL raise RuntimeError / DistBackendError subclasses
            self.broken = True
            raise PeerLost(
                f"another rank of the run ended or lost its connection ({what} failed: {_cause(exc)}); "
                "the other ranks' output (torchrun's log) says why"
            ) from exc

    def all_reduce_sum(self, values: list[float], device: str = "cpu") -> list[float]:
        """Sums over ranks of a few numbers (float64 on CPU for gloo, float32 on NCCL)."""
        if not self.enabled:
            return list(values)
        import torch
        import torch.distributed as dist

        dtype = torch.float64 if self.backend == "gloo" else torch.float32
        t = torch.tensor(values, dtype=dtype, device=device)
        self._call("all_reduce", dist.all_reduce, t, op=dist.ReduceOp.SUM)
        return [float(v) for v in t.cpu().tolist()]

    def any(self, flag: bool, device: str = "cpu") -> bool:
        """True on every rank when it is True on any rank (stop requests, NaN)."""
        if not self.enabled:
            return bool(flag)
        return self.all_reduce_sum([1.0 if flag else 0.0], device)[0] > 0

    def gather_objects(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        self._call("all_gather_object", dist.all_gather_object, out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        self._call("broadcast_object_list", dist.broadcast_object_list, box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            self._call("barrier", dist.barrier)

    def agree(self, error: BaseException | None) -> None:
        """Raise on every rank the first rank's TacticsError (or other failure), if any rank had one."""
        if not self.enabled:
            if error is not None:
                raise error
            return
        messages = self.gather_objects(None if error is None else _one_line(error))
        for rank, message in enumerate(messages):
            if message is not None:
                if error is not None and rank == self.rank:
                    raise error
                raise TacticsError(message if rank == 0 else f"rank {rank}: {message}")

    def on_main(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R | None:
        """`fn(*args, **kwargs)` on rank 0 only, then `agree` on every rank: the other ranks wait
        for rank 0's side effect and fail with it alike. fn's result on rank 0, None elsewhere.

        In a broken group (a peer was lost) there is no one to agree with: rank 0 runs fn alone
        and its error is raised as it is; the other ranks do nothing.
        """
        if self.broken:
            return fn(*args, **kwargs) if self.is_main else None
        result, error = None, None
        if self.is_main:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                error = exc
        self.agree(error)
        return result

    def main_first(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn` on rank 0, then, once it worked, on every other rank, each turn agreed on by all:
        what rank 0 made (the token cache) the others then read instead of making it again.
        fn's result on every rank; raises on every rank when it failed on any."""
        if self.broken:  # no turns can be taken any more
            return fn(*args, **kwargs)
        if not self.is_main:
            self.agree(None)  # rank 0's turn: wait for it, fail with it
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            self.agree(exc)  # raises, on every rank
            raise
        self.agree(None)
        if self.is_main:
            self.agree(None)  # the other ranks' turn
        return result


_COLLECTIVE_ERROR = ("gloo", "nccl", "connection reset", "connection closed", "connection refused",
                     "read error", "broken pipe", "timed out")


def peer_lost(exc: BaseException) -> PeerLost | None:
    """The PeerLost for a collective that failed outside `Dist._call` (DDP's gradient
    all-reduce inside backward), or None for any other error."""
    import torch.distributed as dist

    dist_error = getattr(dist, "DistError", None)
    text = str(exc).lower()
    if (dist_error is not None and isinstance(exc, dist_error)) or (
        isinstance(exc, RuntimeError) and any(k in text for k in _COLLECTIVE_ERROR)
    ):
        return PeerLost(
            f"another rank of the run ended or lost its connection (gradient all_reduce failed: {_cause(exc)}); "
            "the other ranks' output (torchrun's log) says why"
        )
    return None


def _cause(exc: BaseException) -> str:
    """The gist of a gloo/NCCL error: `[.../pair.cc:537] Read error [...]: Connection reset by peer.
    This is typically...` -> `Read error [...]: Connection reset by peer`."""
    import re

    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h)(?::\d+)?\]\s*", "", text)
    return text.split(". This is typically")[0].rstrip(".")[:160] or type(exc).__name__


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, TacticsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


SINGLE = Dist()
_current: Dist | None = None
_left_group = False  # set by shutdown(): __main__ then ends the rank without interpreter teardown


def env_world() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE") or 1)
    except ValueError:
        return 1


def init(device: str = "auto") -> Dist:
    """The process group of a torchrun rank (made once per process), or SINGLE outside torchrun.

    `device`: the run's device name; CUDA ranks use NCCL on `cuda:LOCAL_RANK`, others gloo.
    """
    global _current
    if _current is not None:
        return _current
    world = env_world()
    if world <= 1:
        _current = SINGLE
        return SINGLE
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK") or 0)
    local_rank = int(os.environ.get("LOCAL_RANK") or 0)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE") or world)
    cuda = (device or "auto") in ("auto", "cuda") and torch.cuda.is_available() or str(device).startswith("cuda")
    backend = os.environ.get("TACTICS_DIST_BACKEND") or ("nccl" if cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=TIMEOUT_S))
        except Exception as exc:
            raise TacticsError(
                f"rank {rank} of {world} could not join the process group ({backend}): "
                f"{str(exc).splitlines()[0][:200]}; start the ranks with torchrun (see docs/training.md)"
            ) from exc
    _current = Dist(rank=rank, world=world, local_rank=local_rank, local_world=local_world, backend=backend)
    return _current


def current() -> Dist:
    return _current if _current is not None else SINGLE


def shutdown() -> None:
    """Leave the process group (at the end of a rank's work); never raises."""
    global _current, _left_group
    if _current is None or not _current.enabled:
        return
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            if not _current.broken:
                # All ranks leave together: a rank tearing gloo down while a peer still holds
                # its connections can abort ("terminate called without an active exception").
                dist.barrier()
            dist.destroy_process_group()
    except Exception:
        pass
    _current = None
    _left_group = True


def left_a_group() -> bool:
    """Whether this process was a rank of a multi-process run (and has left its group)."""
    return _left_group


def torchrun_command(nproc: int) -> list[str]:
    """The one-machine launch: torch's own launcher, a free port chosen by `--standalone`."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
            "-m", "tactics_core"]


def rank_device(device: str, d: DistHandle) -> str:
    """`cuda` on a multi-rank run means this rank's GPU, `cuda:LOCAL_RANK`."""
    if d.enabled and device == "cuda":
        return f"cuda:{d.local_rank}"
    return device


def default_threads(d: DistHandle) -> int:
    """Threads per rank when the preset says 0: the cores shared among this node's ranks."""
    return max(1, (os.cpu_count() or 1) // max(1, d.local_world))


def shares(batch_size: int, accum: int, world: int) -> tuple[str, int]:
    """How a step's global rows (batch_size x accum micro-batches) are dealt to `world` ranks.

    ("whole", accum // world): each rank takes every world-th micro-batch whole;
    ("rows", accum): each rank takes every world-th row of each micro-batch.
    Refuses (one line) a global batch that does not divide evenly.
    """
    if world <= 1:
        return "whole", accum
    if accum % world == 0:
        return "whole", accum // world
    if batch_size % world == 0:
        return "rows", accum
    raise TacticsError(
        f"the global batch (training.batch_size {batch_size} x training.grad_accum_steps {accum}) "
        f"does not divide among {world} ranks; make batch_size or grad_accum_steps a multiple of {world}"
    )
