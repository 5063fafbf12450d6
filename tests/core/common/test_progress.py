"""The CLI's progress where stderr is no terminal: a plain line every few seconds, nothing for short work."""

from __future__ import annotations

import io

from tactics_core.common import progress


def test_plain_lines_every_interval_when_not_a_terminal(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    out = io.StringIO()  # not a terminal
    bar = progress.ConsoleProgress("cache", stream=out)
    bar(1, 10, "file 1")
    assert out.getvalue() == ""  # short work prints nothing
    clock[0] += progress.PLAIN_INTERVAL
    bar(4, 10, "file 4")
    clock[0] += 1.0
    bar(5, 10, "file 5")  # within the interval: nothing more
    clock[0] += progress.PLAIN_INTERVAL
    bar(7, None, "tokenizing")
    bar.close()
    assert out.getvalue().splitlines() == ["cache 4/10 (40%) 5s file 4", "cache 7 11s tokenizing"]


def test_keep_alive_resends_the_last_report_while_work_is_silent():
    import time as _time

    from tactics_core.common.progress import KeepAlive

    calls = []
    with KeepAlive(lambda d, t, m: calls.append((d, t, m)), interval=0.05) as alive:
        alive(3, 10, "counting words")
        alive(0, None, "merging pairs")
        _time.sleep(0.4)  # work that reports nothing
    after = len(calls)
    _time.sleep(0.15)
    assert calls[:2] == [(3, 10, "counting words"), (0, None, "merging pairs")]
    assert calls.count((0, None, "merging pairs")) >= 4  # re-sent while silent
    assert len(calls) == after  # and nothing after the work ended
    with KeepAlive(None) as quiet:  # no progress: no thread, no calls
        quiet(1, 2, "x")
