"""Corpus screen: the core's corpus stats, a size histogram, skipped files.

Stats run in a worker (a 40 MB corpus takes seconds) with progress and
cancel; the data folder can be changed here and the other screens use it.
A corpus comes from the demo generator (d) or from an acornlib checkout
(i: `tactics import acornlib` in a worker, its summary and problems shown
when done).

A workspace whose traces/ holds acorn's activated-step traces (what a
proof-step scorer trains on) also gets their figures, the table `tactics
traces stats` prints (`scorer.stats.trace_stats` in a worker after the
corpus's, with progress: a first read builds the traces' column store), below
the corpus's or, without a corpus, alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static

from tactics_core.acorn import library
from tactics_core.common.errors import TacticsError
from tactics_core.gpt import corpus, demo
from tactics_core.scorer.stats import format_trace_stats, trace_stats
from tactics_core.scorer.traces import find_traces

from ..messages import ReportDone
from ..widgets.charts import SizeHistogram
from .base import WorkScreen
from .dialogs import ImportDialog, ImportReportDialog


class CorpusStatsRead(ReportDone):
    """`CorpusStats.to_dict()` plus "histogram" (`size_histogram`)."""


class TraceStatsRead(ReportDone):
    """`TraceStats.to_dict()` of the workspace's traces/."""


class DemoWritten(ReportDone):
    """The demo corpus was written: its report's `to_dict()`."""


class AcornlibImported(ReportDone):
    """An acornlib checkout was imported: `ImportReport.to_dict()`."""


def make_import_job(path: str, data_dir: Path, include: list, exclude: list, force: bool, style: str = "published"):
    """A job that imports an acornlib checkout into `data_dir` (manifest.jsonl beside it)."""

    def job(progress, cancel):
        report = library.import_acornlib(
            path, data_dir, include=include, exclude=exclude, force=force, progress=progress, cancel=cancel,
            style=style,
        )
        return AcornlibImported(report.to_dict())

    return job


def default_acornlib_folder() -> str:
    """~/acornlib when there is one (the README's spelling), else empty."""
    home = Path.home() / "acornlib"
    return "~/acornlib" if home.is_dir() else ""


def make_demo_job(data_dir: Path):
    """A job that writes the built-in demo corpus to `data_dir`."""

    def job(progress, cancel):
        return DemoWritten(demo.write_demo_corpus(data_dir, progress=progress, cancel=cancel).to_dict())

    return job


class CorpusScreen(WorkScreen):
    BINDINGS = [
        Binding("r", "stats", "Stats"),
        Binding("d", "demo", "Demo", tooltip="Generate the demo corpus in the data folder"),
        Binding("i", "import_acornlib", "Import acornlib", tooltip="Make the corpus from an acornlib checkout"),
        Binding("f", "focus_folder", "Folder"),
    ]

    AUTO_FOCUS = "#corpus-skipped"
    _traces_pending = False  # the traces' figures are read after the corpus's

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Data folder ", classes="field-label")
            yield Input(str(self.app.data_dir), id="data-dir", compact=True)
        with Horizontal(id="corpus-top"):
            yield Static("", markup=False, id="corpus-summary")
            yield SizeHistogram(id="corpus-histogram")
        yield Label("Skipped files", classes="section-title", id="corpus-skipped-title")
        yield DataTable(id="corpus-skipped", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="corpus-traces-box"):
            yield Static("", markup=False, id="corpus-traces")

    def on_mount(self) -> None:
        table = self.query_one("#corpus-skipped", DataTable)
        table.add_columns("file", "problem")
        self.query_one("#corpus-summary", Static).update("No stats yet: press r.")
        self.action_stats()

    def _traces_wanted(self) -> bool:
        """Whether the workspace's traces/ holds traces; sets the layout for them (and for no corpus)."""
        try:
            found = self.ws.traces_dir.is_dir() and bool(find_traces([self.ws.traces_dir]))
        except (TacticsError, OSError):
            found = False
        self.set_class(found, "-traces")
        self.set_class(found and not _has_corpus(self.app.data_dir), "-no-corpus")
        return found

    def on_screen_resume(self) -> None:
        self.query_one("#data-dir", Input).value = str(self.app.data_dir)

    def action_focus_folder(self) -> None:
        self.query_one("#data-dir", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "data-dir":
            self.app.data_dir = Path(event.value.strip() or ".")
            self.action_stats()
            self.query_one("#corpus-skipped", DataTable).focus()

    def action_stats(self) -> None:
        data_dir = self.app.data_dir
        self._traces_pending = self._traces_wanted()
        if not data_dir.is_dir():
            self.query_one("#corpus-summary", Static).update(
                f"{data_dir} does not exist.\n\nPress i to import it from an acornlib checkout, d to generate the "
                f"demo corpus there, or f to choose another folder."
            )
            self._start_traces()
            return

        def job(progress, cancel):
            stats = corpus.corpus_stats(data_dir, progress=progress, cancel=cancel)
            result = stats.to_dict()
            result["histogram"] = size_histogram(stats.sizes)
            return CorpusStatsRead(result)

        self.start_job("stats", job, f"Reading {data_dir}")

    def on_job_ended(self, message) -> None:
        super().on_job_ended(message)
        if message.job == "stats":  # the corpus first, then the traces (one progress bar at a time)
            self._start_traces()

    def _start_traces(self) -> None:
        if not self._traces_pending or self.busy("traces"):
            return
        self._traces_pending = False
        traces, store = self.ws.traces_dir, self.ws.trace_store_dir
        self.query_one("#corpus-traces", Static).update(f"Traces in {traces}: reading…")

        def job(progress, cancel):
            return TraceStatsRead(trace_stats([traces], store_root=store, progress=progress, cancel=cancel).to_dict())

        self.start_job("traces", job, f"Reading the traces in {traces}")

    def on_trace_stats_read(self, message: TraceStatsRead) -> None:
        head = f"Traces in {self.ws.traces_dir}"
        if self.has_class("-no-corpus"):
            head += f" (no proof corpus in {self.app.data_dir}: i imports one, d writes the demo)"
        self.query_one("#corpus-traces", Static).update(head + "\n" + format_trace_stats(message.report))

    def action_demo(self) -> None:
        self.start_job("demo", make_demo_job(self.app.data_dir), "Generating the demo corpus")

    def action_import_acornlib(self) -> None:
        """Ask for the checkout (and module globs), then import it in a worker."""
        data_dir = self.app.data_dir
        has_corpus = data_dir.is_dir() and any(data_dir.iterdir())
        folder = self.app.acornlib_folder or default_acornlib_folder()
        self.app.push_screen(ImportDialog(str(data_dir), folder, has_corpus), self._import_answer)

    def _import_answer(self, answer: dict | None) -> None:
        if not answer:
            return
        self.app.acornlib_folder = answer["path"]
        path = str(Path(answer["path"]).expanduser())
        job = make_import_job(path, self.app.data_dir, answer["include"], answer["exclude"], answer["force"],
                              answer.get("style", "published"))
        self.start_job("import", job, f"Importing {answer['path']}")

    def on_corpus_stats_read(self, message: CorpusStatsRead) -> None:
        self.show_stats(message.report)

    def on_demo_written(self, message: DemoWritten) -> None:
        self.notify(f"demo corpus written to {self.app.data_dir}")
        self.action_stats()

    def on_acornlib_imported(self, message: AcornlibImported) -> None:
        result = message.report
        self.notify(f"{result['files']:,} proof files imported into {result['data_dir']}")
        self.action_stats()
        self.app.push_screen(ImportReportDialog(format_import_summary(result), import_problems(result)))

    def show_stats(self, stats: dict[str, Any]) -> None:
        self.query_one("#corpus-summary", Static).update(format_summary(stats))
        edges, counts = histogram_of(stats)
        self.query_one(SizeHistogram).show_sizes(edges, counts, "bytes per file (last bar: the top 1% too)")
        table = self.query_one("#corpus-skipped", DataTable)
        table.clear()
        for item in stats.get("skipped", []):
            table.add_row(Text(str(item.get("file", "?"))), Text(str(item.get("problem", "?"))))


def _has_corpus(data_dir: Path) -> bool:
    try:
        return data_dir.is_dir() and any(p.is_file() for p in data_dir.glob("*.txt"))
    except OSError:
        return False


def format_summary(stats: dict[str, Any]) -> str:
    """The stats as a few aligned lines (what fits in 36 columns)."""
    lines = [
        f"files      {stats.get('files', 0):>12,}",
        f"theorems   {stats.get('theorems', 0):>12,}",
        f"bytes      {stats.get('bytes', 0):>12,}",
        f"chars      {stats.get('chars', 0):>12,}",
    ]
    size = stats.get("size") or stats.get("sizes") or {}
    if isinstance(size, dict):
        for key in ("mean", "median", "p95", "max"):
            if key in size:
                lines.append(f"size {key:<6}{size[key]:>12,.0f} B")
    lines_per_goal = stats.get("proof_lines") or stats.get("proof_lines_per_goal")
    if isinstance(lines_per_goal, dict) and "mean" in lines_per_goal:
        lines.append(f"proof lines/goal {lines_per_goal['mean']:>6.1f} mean")
    sections = stats.get("sections") or {}
    if sections:
        shares = [f"@{k} {v:4.0%}" for k, v in sections.items()]
        lines.append("sections   " + "  ".join(shares[:3]))
        if shares[3:]:
            lines.append("           " + "  ".join(shares[3:]))
    skipped = stats.get("skipped") or []
    lines.append(f"skipped    {len(skipped):>12,}")
    return "\n".join(lines)


def format_import_summary(result: dict[str, Any]) -> str:
    """An import's summary in lines that fit the report dialog."""
    methods = "  ".join(f"{m} {n:,}" for m, n in result.get("methods", {}).items() if n)
    skipped = result.get("skipped_certificates", 0)
    capped = result.get("capped_certificates", 0)
    lines = [
        f"Imported {result.get('source', '?')} ({result.get('layout', '?')} layout)",
        f"into {result.get('data_dir', '?')}, manifest {result.get('manifest', '?')}",
        f"modules {result.get('modules', 0):,}   certificates {result.get('certificates', 0):,}"
        + (f" ({skipped:,} skipped)" if skipped else ""),
        f"files {result.get('files', 0):,}   bytes {result.get('bytes', 0):,}   {result.get('seconds', 0):.1f} s"
        + (f"   {capped:,} over the byte cap" if capped else ""),
        f"goals: {methods or '-'}",
    ]
    return "\n".join(lines)


def import_problems(result: dict[str, Any]) -> list[str]:
    """The problems by kind: a heading line per kind, then its first examples (`file:line: what`)."""
    out = []
    for group in library.group_problems(result.get("problems", []), examples=5):
        out.append(f"{group['title']}: {group['count']:,}")
        out.extend(f"  {line}" for line in group["examples"])
        if group["count"] > len(group["examples"]):
            out.append(f"  ... and {group['count'] - len(group['examples']):,} more (tactics import acornlib --json)")
    return out


def size_histogram(sizes: list[int], bins: int = 10) -> dict[str, list]:
    """Equal-width bins up to the 99th percentile; the last bin takes the long tail."""
    if not sizes:
        return {"edges": [], "counts": []}
    ordered = sorted(sizes)
    lo = ordered[0]
    hi = max(lo + 1, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))])
    width = (hi - lo) / bins
    counts = [0] * bins
    for size in ordered:
        counts[min(bins - 1, int((size - lo) / width))] += 1
    return {"edges": [lo + i * width for i in range(bins)], "counts": counts}


def histogram_of(stats: dict[str, Any]) -> tuple[list[float], list[int]]:
    hist = stats.get("histogram") or {}
    return list(hist.get("edges", [])), list(hist.get("counts", []))
