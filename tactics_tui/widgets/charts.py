"""Plotext charts (via textual-plotext): corpus size histogram, loss curves.

Both redraw only when given new data; the Training screen feeds the loss
chart at most twice a second.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot


class SizeHistogram(PlotextPlot):
    """Histogram of proof file sizes (characters)."""

    def show_sizes(self, edges: list[float], counts: list[int], xlabel: str = "chars per file") -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if counts:
            # Numeric positions with explicit, sparse tick labels: plotext's own
            # label placement drops colliding labels differently from run to run.
            positions = list(range(len(counts)))
            plt.bar(positions, counts, marker="hd")
            ticks = positions[::3]
            plt.xticks(ticks, [_short(edges[i]) for i in ticks])
        plt.title("files by size")
        plt.xlabel(xlabel)
        self.refresh()


class LossChart(PlotextPlot):
    """Training loss (every step), validation loss and proof-line validation loss (every evaluation);
    a scorer's run adds its AUC and used-step rank (`extra`: (label, points), both in 0..1)."""

    def show_losses(
        self,
        train: list[tuple[int, float]],
        val: list[tuple[int, float]],
        proof: list[tuple[int, float]] = (),
        extra: list[tuple[str, list[tuple[int, float]]]] = (),
    ) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if train:
            xs, ys = _thin(train, 400)
            plt.plot(xs, ys, label="train", marker="braille")
        if val:
            plt.plot([s for s, _ in val], [v for _, v in val], label="val", marker="dot")
        if proof:
            plt.plot([s for s, _ in proof], [v for _, v in proof], label="proof val", marker="x")
        for (label, points), marker in zip(extra, ("+", "x", "o")):
            if points:
                plt.plot([s for s, _ in points], [v for _, v in points], label=label, marker=marker)
        plt.title(" · ".join(["loss", *(label for label, points in extra if points)]))
        plt.xlabel("step")
        self.refresh()


def _thin(points: list[tuple[int, float]], most: int) -> tuple[list[int], list[float]]:
    """At most `most` points (every k-th), so a long run still draws fast."""
    step = max(1, len(points) // most)
    chosen = points[::step]
    if chosen[-1] != points[-1]:
        chosen.append(points[-1])
    return [s for s, _ in chosen], [v for _, v in chosen]


def _short(value: float) -> str:
    value = float(value)
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


# Run colours: (plotext name, Rich name), chosen by a hash of the run's name so a run keeps
# its colour whichever runs are shown with it.
RUN_COLOURS = (
    ("cyan+", "bright_cyan"),
    ("magenta+", "bright_magenta"),
    ("green+", "bright_green"),
    ("yellow+", "bright_yellow"),
    ("blue+", "bright_blue"),
    ("red+", "bright_red"),
    ("orange", "dark_orange"),
    ("cyan", "cyan"),
    ("magenta", "magenta"),
    ("green", "green"),
)
BASELINE_COLOUR = ("white", "white")


def run_colour(name: str) -> tuple[str, str]:
    import zlib

    return RUN_COLOURS[zlib.crc32(name.encode("utf-8")) % len(RUN_COLOURS)]


class OverlayChart(PlotextPlot):
    """Loss curves of several runs in one chart: a colour per run, the baseline in white."""

    def show_runs(self, curves: list[tuple[str, list[tuple[int, float]], bool]], what: str = "train loss") -> None:
        """`curves`: (run name, points, is_baseline), drawn in that order."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for name, points, baseline in curves:
            if not points:
                continue
            xs, ys = _thin(points, 300)
            colour = BASELINE_COLOUR[0] if baseline else run_colour(name)[0]
            label = f"{name} (baseline)" if baseline else name
            plt.plot(xs, ys, label=label, marker="braille", color=colour)
        plt.title(what if curves else f"{what}: select runs with space")
        plt.xlabel("step")
        self.refresh()


class SweepChart(PlotextPlot):
    """A sweep's objective against trial number: completed trials, pruned ones at their last
    figure, and the best so far (a step line over the completed trials)."""

    def show_trials(self, trials: list[tuple[int, str, float | None]], objective: str, maximize: bool = False) -> None:
        """`trials`: (number, state, objective) in trial order."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        done = [(n, v) for n, s, v in trials if s == "COMPLETE" and v is not None]
        pruned = [(n, v) for n, s, v in trials if s == "PRUNED" and v is not None]
        if done:
            best, line = None, []
            for n, v in done:
                best = v if best is None or (v > best if maximize else v < best) else best
                line.append((n, best))
            plt.plot([n for n, _ in line], [b for _, b in line], label="best so far", marker="braille", color="green+")
            plt.scatter([n for n, _ in done], [v for _, v in done], label="complete", marker="dot", color="cyan+")
        if pruned:
            plt.scatter([n for n, _ in pruned], [v for _, v in pruned], label="pruned", marker="x", color="yellow+")
        numbers = [n for n, _, _ in trials]
        if numbers and len(numbers) <= 12:
            plt.xticks(numbers, [str(n) for n in numbers])
        self.heading = f"{objective or 'objective'} by trial" if (done or pruned) else "no trial figure yet"
        plt.title(self.heading)
        plt.xlabel("trial")
        self.refresh()
