"""The distributed seam without a process group: `on_main` and `main_first` make the same
collectives on every rank, in the same order, and fail on every rank alike (the real 2-rank
runs are tests/core/training/test_ddp.py)."""

from __future__ import annotations

import pytest

from tactics_core.common.errors import TacticsError
from tactics_core.training.distributed import SINGLE, Dist


class OneOfTwo(Dist):
    """Rank `rank` of two; the other rank's part of each gather is scripted (`other`: what it
    brings to each agreement, None = no error). Every collective and call of fn is logged."""

    def __init__(self, rank: int, other: list[str | None] | None = None) -> None:
        super().__init__(rank=rank, world=2, backend="gloo")
        self.other = list(other or [])
        self.log: list[str] = []

    def gather_objects(self, obj):
        self.log.append("agree")
        theirs = self.other.pop(0) if self.other else None
        return [obj, theirs] if self.rank == 0 else [theirs, obj]

    def fn(self, value: int = 1, fail: bool = False) -> int:
        self.log.append("fn")
        if fail:
            raise TacticsError("disk full")
        return value


def test_on_main_runs_on_rank_0_and_every_rank_agrees():
    main, other = OneOfTwo(0), OneOfTwo(1)
    assert main.on_main(main.fn, 5) == 5 and other.on_main(other.fn, 5) is None
    assert main.log == ["fn", "agree"] and other.log == ["agree"]


def test_a_rank_0_failure_raises_on_every_rank():
    main = OneOfTwo(0)
    with pytest.raises(TacticsError, match="disk full"):
        main.on_main(main.fn, fail=True)
    other = OneOfTwo(1, other=["disk full"])
    with pytest.raises(TacticsError, match="^disk full$"):
        other.on_main(other.fn)
    assert other.log == ["agree"]  # it never ran fn


def test_main_first_takes_turns_with_the_same_two_agreements():
    main, other = OneOfTwo(0), OneOfTwo(1)
    assert main.main_first(main.fn, 3) == 3 and other.main_first(other.fn, 3) == 3
    assert main.log == ["fn", "agree", "agree"] and other.log == ["agree", "fn", "agree"]
    late = OneOfTwo(0, other=[None, "bad cache"])  # the other rank fails in its own turn
    with pytest.raises(TacticsError, match="rank 1: bad cache"):
        late.main_first(late.fn)
    early = OneOfTwo(1, other=["no data"])  # rank 0 failed: the others never try
    with pytest.raises(TacticsError, match="no data"):
        early.main_first(early.fn)
    assert early.log == ["agree"]


def test_a_broken_group_makes_no_collective():
    main, other = OneOfTwo(0), OneOfTwo(1)
    main.broken = other.broken = True
    assert main.on_main(main.fn, 2) == 2 and other.on_main(other.fn, 2) is None
    assert main.log == ["fn"] and other.log == []
    with pytest.raises(TacticsError):
        main.on_main(main.fn, fail=True)


def test_one_process_raises_the_error_itself():
    error = TacticsError("x")

    def boom() -> None:
        raise error

    with pytest.raises(TacticsError) as got:
        SINGLE.on_main(boom)
    assert got.value is error
    assert SINGLE.main_first(lambda: 7) == 7
