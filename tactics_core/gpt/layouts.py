"""The data layouts: how a proof file becomes the tokens a model trains on, and how that
model is then asked for a proof line.

A model learns one layout (`training.layout`) and has to be asked in it, so the trainer
(`data.py`), completion (`complete.py`), evaluation and the Playground all take a layout's
encoding and prompt from its one object here: adding a layout is writing one class.
Presets, checkpoints, exports and reports record only its name; `layout_named` turns the
name back into the object.

* `prover` (the default): each file is exactly the token stream the Acorn prover builds
  (`prover_replica.encode_stream`, PROVER_PROTOCOL.md), so the model learns what the prover asks.
* `file` (the original scripts' format): the whole file (context, `@P`, proof) and one
  separator; the model is asked with the context, `@P` and the proof lines so far.

`prover_replica` (which loads numpy) is imported inside the methods that use it, as `data.py`
does, so reading the names (presets, the CLI's help) stays light.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Sequence

from tactics_core.common.errors import TacticsError
from tactics_core.gpt.corpus import as_proof_file
from tactics_core.gpt.prover_figures import MAX_LINE_TOKENS


@dataclass
class Prompt:
    """The tokens a model continues to write the next proof line, and what was cut to fit."""

    text: str
    ids: list[int]
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


class Layout(ABC):
    """One data layout. Each subclass is one layout with one instance (PROVER, FILE).

    The attributes say what code that cannot call a layout needs to know of it: `data.py`
    picks its split and masks its batches by them, evaluation its own bits per byte, the
    Playground its first mode.
    """

    name: str  # what presets, checkpoints and exports record (`training.layout`)
    summary: str  # what the preset key's help says of it
    asked: str  # how completion asks a model of it, in words (`tactics complete` prints it)
    # Each file's tokens end in one separator (<EOS>, or <PAD> for a tokenizer without one),
    # which is a target only when it is <EOS> and holds none of the file's bytes.
    separator: bool = False
    # A file's tokens are the prover's own stream: training cuts them as the prover does
    # (`data.ProverSplit`), the prover's figures are the model's own, and the Playground
    # starts in prover mode.
    prover_stream: bool = False

    @abstractmethod
    def prompt(self, tokenizer: Any, context: Any, context_length: int, proof_so_far: Sequence[str] = (),
               max_tokens: int = MAX_LINE_TOKENS) -> Prompt:
        """The tokens a model of this layout continues to write the next line of `context`
        (a ProofFile or proof-file text, whose `@P` lines come before `proof_so_far`), within
        `context_length` positions and room for `max_tokens` new ones."""

    @abstractmethod
    def encode_files(self, tokenizer: Any, files: Sequence[Any], sep_id: int) -> Iterator[tuple[list[int], list[int], int, int]]:
        """Per training file: (token ids, each token's role as a target (`prover_replica.ROLE_*`),
        prompt tokens, the UTF-8 bytes the tokens stand for) - what the token cache holds."""

    def __repr__(self) -> str:
        return f"<layout {self.name}>"


class ProverLayout(Layout):
    """The prover's token stream: prompt without `@P`, then `nl, line, nl, line ... nl`."""

    name = "prover"
    summary = "each file as the prover's token stream: prompt without @P, nl before each line"
    asked = "the prover's way"
    prover_stream = True

    def prompt(self, tokenizer: Any, context: Any, context_length: int, proof_so_far: Sequence[str] = (),
               max_tokens: int = MAX_LINE_TOKENS) -> Prompt:
        """The prover's cache for the next line plus the newline it feeds first:
        prompt (`prover_replica.build_prompt`), nl, L1, nl, L2 ... nl (`prover_replica.cache_ids`)."""
        from tactics_core.gpt import prover_replica

        pf = as_proof_file(context)
        lines = (_lines(pf.proof) if isinstance(context, str) else []) + list(proof_so_far)
        p = prover_replica.build_prompt(tokenizer, pf, context_length)
        ids = prover_replica.cache_ids(tokenizer, pf, lines, context_length) + [prover_replica.newline_token(tokenizer)]
        notes = []
        if p.truncated:
            notes.append(
                f"prover prompt: {p.full_tokens} tokens, the first {p.cut_tokens} cut (the prover keeps the last "
                f"{len(p.ids)}, context_length - 100)"
            )
        if len(ids) >= context_length:
            raise TacticsError(
                f"no room left: the prompt and {len(lines)} proof line(s) fill {len(ids)} of the {context_length} "
                "positions, so the prover can not ask for another line here"
            )
        text = p.text + "".join(line + "\n" for line in lines)
        return Prompt(text, ids, p.truncated, notes)

    def encode_files(self, tokenizer: Any, files: Sequence[Any], sep_id: int):
        """The untruncated prover stream (`prover_replica.encode_stream`); no separator."""
        from tactics_core.gpt.prover_replica import encode_stream, newline_token

        nl = newline_token(tokenizer)
        for f in files:
            stream = encode_stream(tokenizer, f, nl=nl)
            nbytes = len(f.context_text().encode("utf-8")) + (
                1 + sum(len(line.encode("utf-8")) + 1 for line in f.proof) if f.proof else 0
            )
            yield stream.ids, stream.roles, stream.prompt_len, nbytes


class FileLayout(Layout):
    """Whole files as written, each ended by a separator; asked with `@P` and the lines so far."""

    name = "file"
    summary = "the original scripts' whole files"
    asked = "with @P (file layout)"
    separator = True

    def prompt(self, tokenizer: Any, context: Any, context_length: int, proof_so_far: Sequence[str] = (),
               max_tokens: int = MAX_LINE_TOKENS) -> Prompt:
        """`ProofFile.prompt`, cut to leave room for the new line (`build_prompt`)."""
        return build_prompt(tokenizer, context, proof_so_far, context_length - generation_reserve(context_length, max_tokens))

    def encode_files(self, tokenizer: Any, files: Sequence[Any], sep_id: int):
        """encode(text) + separator; proof tokens are those after the `@P` line."""
        from tactics_core.gpt.prover_replica import ROLE_CONTEXT, ROLE_PROOF

        texts = [f.text() for f in files]
        heads = [f.context_text() + "@P\n" if f.proof else f.text() for f in files]
        for f, text, ids, head in zip(files, texts, tokenizer.encode_batch(texts), tokenizer.encode_batch(heads)):
            n_head = min(len(head), len(ids))
            roles = [ROLE_CONTEXT] * n_head + [ROLE_PROOF] * (len(ids) - n_head) + [ROLE_CONTEXT]
            yield ids + [sep_id], roles, n_head, len(text.encode("utf-8"))


PROVER = ProverLayout()
FILE = FileLayout()
_BY_NAME = {layout.name: layout for layout in (PROVER, FILE)}
LAYOUTS = tuple(_BY_NAME)  # the names, the default first
DEFAULT_LAYOUT = PROVER.name


def layout_named(name: str) -> Layout:
    """The layout a preset, checkpoint or export names; an unknown name is a one-line error."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise TacticsError(f"unknown data layout {name!r}; training.layout must be one of: {', '.join(LAYOUTS)}") from None


# ---------------------------------------------------------------- the file layout's prompt


def _lines(section: Iterable[str] | None) -> list[str]:
    return list(section or ())


def generation_reserve(context_length: int, max_tokens: int) -> int:
    """Tokens kept free for the new line when a prompt must be cut."""
    return max(1, min(int(max_tokens), context_length // 4))


def build_prompt(tokenizer: Any, context: Any, proof_so_far: Sequence[str] = (), budget: int = 256) -> Prompt:
    """The `file` layout's prompt (`ProofFile.prompt`): token ids, at most `budget` of them.

    `context` is a ProofFile (its context only: a corpus file's proof is the
    answer, not the prompt) or proof-file text (whose `@P` lines, if any, are
    the proof so far, before `proof_so_far`). Over budget, the oldest `@T` lines and then the
    oldest proof lines are dropped (goal, hypothesis and counterfactual kept);
    if even those do not fit, only the last `budget` tokens are kept.
    """
    budget = max(1, int(budget))
    from_text = isinstance(context, str)
    pf = as_proof_file(context)
    proof = (_lines(pf.proof) if from_text else []) + list(proof_so_far)
    notes: list[str] = []
    text = pf.prompt(tuple(proof))
    ids = tokenizer.encode(text)
    if len(ids) <= budget:
        return Prompt(text, ids, False, notes)

    full_tokens = len(ids)
    theorem = _lines(pf.theorem)

    def assemble(t_drop: int, p_drop: int) -> str:
        return replace(pf, theorem=tuple(theorem[t_drop:])).prompt(tuple(proof[p_drop:]))

    # Estimate each line's cost from its own encoding, drop oldest first, then verify.
    droppable = theorem + proof
    costs = [len(x) for x in tokenizer.encode_batch([line + "\n" for line in droppable])] if droppable else []
    total = full_tokens
    drop = 0
    while drop < len(droppable) and total > budget:
        total -= costs[drop]
        if drop == len(theorem) - 1:
            total -= 1  # the "@T" marker goes with the last theorem line
        drop += 1
    while True:
        t_drop, p_drop = min(drop, len(theorem)), max(0, drop - len(theorem))
        text = assemble(t_drop, p_drop)
        ids = tokenizer.encode(text)
        if len(ids) <= budget or drop >= len(droppable):
            break
        drop += 1
    what = []
    if t_drop:
        what.append(f"{t_drop} of {len(theorem)} theorem line(s)")
    if p_drop:
        what.append(f"the oldest {p_drop} of {len(proof)} proof line(s)")
    notes.append(
        f"prompt of {full_tokens} tokens does not fit the {budget} available"
        + (f"; dropped {' and '.join(what)}" if what else "")
    )
    if len(ids) > budget:
        notes.append(
            f"goal and counterfactual alone take {len(ids)} tokens; kept only the last {budget} tokens"
        )
        ids = ids[-budget:]
        text = tokenizer.decode(ids)
    return Prompt(text, ids, True, notes)
