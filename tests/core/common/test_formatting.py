"""The small shared rules: sizes, durations (tactics_core.common.formatting) and devices (tactics_core.common.device)."""

from __future__ import annotations

from tactics_core.common.formatting import format_duration, human_size
from tactics_core.common.system import human_bytes


def test_human_size_as_checkpoint_listings_write_it():
    assert [human_size(n) for n in (None, 512, 1536, 5 * 2**20, 3 * 2**30)] == ["?", "512 B", "1.5 KB", "5.0 MB", "3.0 GB"]


def test_memory_is_whole_up_to_megabytes():
    assert [human_bytes(n) for n in (None, 512, 812 * 2**20, 3 * 2**29)] == ["–", "512 B", "812 MB", "1.5 GB"]


def test_durations_round_and_name_what_is_missing():
    assert [format_duration(s) for s in (None, 5, 59.4, 65, 3700, -3, float("inf"))] == [
        "–", "5s", "59s", "1m05s", "1h01m", "0s", "–"]
    assert format_duration("x", missing="-") == "-"


def test_one_device_rule_for_the_trainer_and_the_completer():
    import pytest

    from tactics_core.common.device import resolve_device
    from tactics_core.common.errors import TacticsError

    assert resolve_device("auto") in ("cuda", "mps", "cpu") and resolve_device(None) == resolve_device("auto")
    assert resolve_device("cuda:3", check=False) == "cuda:3"  # the completer passes explicit names on
    with pytest.raises(TacticsError, match="unknown device 'tpu'"):
        resolve_device("tpu")
