"""Tokenizer screen: train the BPE tokenizer, then see what it does.

Training runs in a worker with progress and cancel. Afterwards the screen
shows the vocabulary reached, compression (characters per token over the
whole corpus) and one proof with its token boundaries coloured.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from tactics_core.gpt import corpus, tokenizer

from ..messages import ReportDone
from .base import WorkScreen


class TokenizerScreen(WorkScreen):
    BINDINGS = [
        Binding("t", "train", "Train"),
        Binding("v", "focus_vocab", "Vocab size"),
    ]

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Kind ", classes="field-label")
            yield Select([(k, k) for k in tokenizer.KINDS], allow_blank=False, value=tokenizer.DEFAULT_KIND, id="tok-kind", compact=True)
            yield Label(" Vocab size ", classes="field-label")
            yield Input("4096", id="tok-vocab", type="integer", compact=True)
        yield Static("", markup=False, id="tok-report")
        yield Label("One proof, token by token", classes="section-title")
        with VerticalScroll(id="tok-sample-box"):
            yield Static("", markup=False, id="tok-sample")

    def on_mount(self) -> None:
        self.query_one("#tok-report", Static).update("No tokenizer yet: press t to train one on the data folder.")
        if self.ws.tokenizer_path.exists():
            self._load_sample(None)

    def action_focus_vocab(self) -> None:
        self.query_one("#tok-vocab", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "tok-vocab":
            self.action_train()

    def action_train(self) -> None:
        text = self.query_one("#tok-vocab", Input).value.strip()
        try:
            vocab = int(text)
        except ValueError:
            self.app.show_error(f"vocab size {text!r} is not a whole number; type e.g. 4096")
            return
        kind = str(self.query_one("#tok-kind", Select).value)
        data_dir = self.app.data_dir
        output_dir = self.ws.checkpoint_dir

        def job(progress, cancel):
            trained = tokenizer.train_tokenizer(data_dir, output_dir, vocab_size=vocab, kind=kind, progress=progress, cancel=cancel)
            report = trained.to_dict()
            report.update(_sample(report.get("path") or output_dir / "tokenizer.json", data_dir))
            return TokenizerTrained(report)

        self.start_job("tokenizer", job, f"Training a {kind} tokenizer ({vocab} tokens)")

    def _load_sample(self, report: dict[str, Any] | None) -> None:
        path = self.ws.tokenizer_path
        data_dir = self.app.data_dir

        def job(progress, cancel):
            return TokenizerRead(_sample(path, data_dir))

        self.start_job("sample", job, "Loading the tokenizer")

    def on_tokenizer_trained(self, message: TokenizerTrained) -> None:
        self.notify(f"tokenizer saved: {message.report.get('path')}")
        self._show(message.report)

    def on_tokenizer_read(self, message: TokenizerRead) -> None:
        self._show(message.report)

    def _show(self, info: dict[str, Any]) -> None:
        self.query_one("#tok-report", Static).update(format_report(info))
        self.query_one("#tok-sample", Static).update(boundaries(info.get("pieces") or []))


class TokenizerRead(ReportDone):
    """The tokenizer's facts and one proof cut into pieces (`_sample`)."""


class TokenizerTrained(ReportDone):
    """A tokenizer was trained: `TokenizerReport.to_dict()` plus `_sample`'s facts."""


def _sample(tokenizer_path, data_dir) -> dict[str, Any]:
    """The tokenizer's facts and one proof cut into its token pieces (worker thread)."""
    tok = tokenizer.load_tokenizer(tokenizer_path)
    info: dict[str, Any] = {"path": str(tokenizer_path), "vocab_size": tok.vocab_size, "kind": tok.kind}
    try:
        first = next(iter(corpus.iter_corpus(data_dir)), None)
    except Exception:
        first = None
    if first is not None:
        text = first.text()
        ids = tok.encode(text)
        info["pieces"] = tok.render_boundaries(text)
        info["sample_file"] = first.name
        info["sample_chars_per_token"] = len(text) / max(1, len(ids))
    return info


def format_report(report: dict[str, Any]) -> str:
    parts = [f"tokenizer  {report.get('path', '?')}", f"kind       {report.get('kind', '?')}"]
    if "vocab_size" in report:
        asked = report.get("vocab_requested")
        parts.append(f"vocab      {report['vocab_size']:,}" + (f" (asked {asked:,})" if asked else ""))
    if report.get("compression"):
        parts.append(f"compression {report['compression']:.2f} chars/token ({report.get('tokens', 0):,} tokens, whole corpus)")
    if report.get("heldout_compression"):
        parts.append(
            f"held out   {report['heldout_compression']:.2f} chars/token on validation theorems "
            f"(learned from {report.get('train_files', 0):,} files)"
        )
    if report.get("seconds") is not None:
        parts.append(f"trained in {report['seconds']:.1f} s")
    if report.get("sample_chars_per_token"):
        parts.append(f"sample {report.get('sample_file')}: {report['sample_chars_per_token']:.2f} chars/token")
    for warning in report.get("warnings") or []:
        parts.append(f"warning: {warning}")
    return "\n".join(parts)


def boundaries(pieces: list[str]) -> Text:
    """Token pieces with alternating backgrounds, so each boundary is visible."""
    text = Text()
    styles = ("on #264f78", "on #4d3a5c")
    for i, piece in enumerate(pieces):
        shown = piece.replace("\n", "⏎\n")
        text.append(shown, style=styles[i % 2])
    return text
