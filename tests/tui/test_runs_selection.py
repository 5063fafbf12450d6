"""The Runs screen's selection without an app: the chart's runs, the baseline, the diff's pair."""

from __future__ import annotations

from types import SimpleNamespace

from tactics_tui.screens.runs.selection import RunSelection


def runs(*names):
    return [SimpleNamespace(name=n) for n in names]


def test_the_chart_draws_the_baseline_first_then_the_selected_in_order():
    infos = runs("a", "b", "c")
    s = RunSelection()
    s.toggle("c")
    s.toggle("a")
    assert [i.name for i in s.shown(infos)] == ["c", "a"]
    s.pin("a")
    assert [i.name for i in s.shown(infos)] == ["a", "c"]
    s.toggle("a")  # unselected, still the baseline
    assert s.selected == ["c"] and [i.name for i in s.shown(infos)] == ["a", "c"]
    s.pin("a")
    assert s.baseline is None


def test_the_diff_pair_and_runs_that_are_gone():
    infos = runs("a", "b", "c")
    s = RunSelection()
    assert s.diff_pair(infos, infos[0]) is None
    s.pin("a")
    assert s.diff_pair(infos, infos[0]) is None  # the baseline against itself
    assert [i.name for i in s.diff_pair(infos, infos[2])] == ["a", "c"]
    s.toggle("b")
    s.toggle("c")
    assert [i.name for i in s.diff_pair(infos, infos[0])] == ["b", "c"]  # two selected win
    s.keep_only({"b"})
    assert s.selected == ["b"] and s.baseline is None
