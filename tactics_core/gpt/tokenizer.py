"""Train and load the byte-level BPE tokenizer, in three kinds.

Why several kinds: the original scripts' recipe (`seed`) splits text into words
with GPT-2's regex before BPE, so no token ever spans a space; on Acorn proofs
it runs out of merges before the vocabulary asked for and compresses ~2.6
characters per token. `lines` only splits at newlines (each "\\n" is its own
token) and lets merges cross spaces; it fills the vocabulary and compresses
~2.5x better, but its multi-word tokens are rare and specific to the theorems
it was trained on, so on theorems it never saw `seed` reaches lower bits per
byte in the same training time. `lines` is the default all the same, because
the prover samples proof lines token by token at temperature 0.8 with 100
tokens of room: lines of fewer tokens are sampled whole more often (exact
match@8 about 4x), overflow the context far less (3% of held-out goals
against 28% at the `cpu` preset's context) and cost fewer model calls
(docs/tokenizer.md has the measurements). `names` keeps every name (letters,
digits, _ . ') whole and apart from the symbols around it, so a name copied
from the goal is the same tokens in the proof: the lowest proof bits per byte
at equal training time, at twice `lines`'s tokens per line.

All kinds are byte-level with all 256 byte symbols in the vocabulary, so no
input ever maps to `<UNK>` and `decode(encode(text)) == text` exactly.

Special tokens: `<UNK>`=0, `<PAD>`=1, `<EOS>`=2. `<EOS>` marks the end of a
proof file: the trainer puts it between files packed into one sequence, and a
sampler may stop on it. Tokenizers made by the original scripts have only
`<UNK>` and `<PAD>`: there `eos_id` is None and consumers fall back (see
`TacticsTokenizer.eos_id`).

`tokenizers` is imported lazily so `tactics --help` stays fast.

Why one module over 600 lines: loading and training build the same `tokenizers` pipeline per
kind (`_new_tokenizer`, `detect_kind`), and every caller imports the tokenizer from one place;
training is the last section, `train_tokenizer` and its stages.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from tactics_core.common.atomic import atomic_path
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, KeepAlive, ProgressFn, check, report
from tactics_core.common.workspace import TOKENIZER_FILE
from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION, is_validation_key, stable_share

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer

UNK, PAD, EOS = "<UNK>", "<PAD>", "<EOS>"
SPECIAL_TOKENS = (UNK, PAD, EOS)  # ids 0, 1, 2 in this order

KINDS = {  # name -> one line for help texts; the default first
    "lines": "newline is its own token; byte-level BPE merges across spaces inside a line (2.5x denser: shorter proof lines)",
    "seed": "the original scripts' recipe: GPT-2 word regex, then byte-level BPE (tokens never span a space)",
    "names": "newline is its own token; BPE merges inside a name (letters, digits, _ . ') or inside a run of other characters, never across",
}
CHUNK_PATTERNS = {  # the chunks BPE merges inside, for the kinds that split a line further
    "names": r"[A-Za-z0-9_.']+|[^A-Za-z0-9_.'\n]+",  # a name, or a run of spaces and symbols
}
# Chosen by measurement of what the prover gets (exact match@8, overflow, attempts per 5 s on
# held-out theorems at equal training time): docs/tokenizer.md.
DEFAULT_KIND = "lines"

MIN_VOCAB = 260  # 256 byte symbols + 3 specials + at least one merge
MAX_VOCAB = 65536  # ids fit in uint16 token caches

_ENCODE_CHUNK = 1024  # texts per encode_batch call while counting (progress granularity)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (how checkpoints pin the tokenizer they were trained with)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which the ByteLevel model uses for its tokens."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


_BYTE_OF_CHAR = {c: b for b, c in _bytes_to_unicode().items()}


# ---------------------------------------------------------------- building a tokenizer


def _new_tokenizer(kind: str) -> "Tokenizer":
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE(unk_token=UNK))
    if kind == "seed":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    elif kind == "lines" or kind in CHUNK_PATTERNS:
        chunks = [pre_tokenizers.Split(Regex(CHUNK_PATTERNS[kind]), behavior="isolated")] if kind != "lines" else []
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
                *chunks,
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        raise TacticsError(f"unknown tokenizer kind {kind!r}; choose one of: {', '.join(KINDS)}")
    tok.decoder = decoders.ByteLevel()
    return tok


def detect_kind(spec: dict[str, Any]) -> str:
    """'seed', 'lines', 'names' or 'unknown', from a parsed tokenizer.json (works for the original scripts' files)."""
    model = spec.get("model") or {}
    decoder = spec.get("decoder") or {}
    pre = spec.get("pre_tokenizer") or {}
    if model.get("type") != "BPE" or decoder.get("type") != "ByteLevel" or spec.get("normalizer"):
        return "unknown"
    if pre.get("type") == "ByteLevel":
        if not pre.get("add_prefix_space", True) and pre.get("use_regex", True):
            return "seed"
        return "unknown"
    if pre.get("type") == "Sequence":
        steps = pre.get("pretokenizers") or []
        kind = "lines"
        if len(steps) == 3:
            kind = next((k for k, pat in CHUNK_PATTERNS.items() if _is_split(steps[1], pat)), "unknown")
            steps = [steps[0], steps[2]]
        if (
            len(steps) == 2
            and _is_split(steps[0], "\n")
            and steps[1].get("type") == "ByteLevel"
            and not steps[1].get("add_prefix_space", True)
            and not steps[1].get("use_regex", True)
        ):
            return kind
    return "unknown"


def _is_split(step: dict[str, Any], pattern: str) -> bool:
    """True for a Split pre-tokenizer step that isolates matches of `pattern`."""
    return (step.get("type") == "Split" and (step.get("pattern") or {}).get("Regex") == pattern
            and step.get("behavior") == "Isolated" and not step.get("invert"))


# ---------------------------------------------------------------- loading


class TacticsTokenizer:
    """A loaded tokenizer.json: encode/decode plus what trainers and provers need to know about it."""

    def __init__(
        self, tokenizer: "Tokenizer", path: Path, sha256: str, kind: str, byte_level: bool = True
    ) -> None:
        self._tok = tokenizer
        # Literal "<EOS>" etc. in a proof is text, not a control token.
        if hasattr(tokenizer, "encode_special_tokens"):
            tokenizer.encode_special_tokens = True
        self.path = path
        self.sha256 = sha256
        self.kind = kind
        self.vocab_size: int = tokenizer.get_vocab_size(with_added_tokens=True)
        self.unk_id: int | None = tokenizer.token_to_id(UNK)
        pad = tokenizer.token_to_id(PAD)
        if pad is None:
            raise TacticsError(
                f"{path} has no {PAD} token, so it was not made for tactics models; "
                "retrain with `tactics tokenizer train`"
            )
        self.pad_id: int = pad
        # None for tokenizers made by the original scripts (no <EOS>): packers then
        # separate files with pad_id (masked out of the loss) and samplers stop
        # at a token in newline_ids / at the length limit instead.
        self.eos_id: int | None = tokenizer.token_to_id(EOS)
        self._byte_level = byte_level
        self._pieces = [self._piece_bytes(i) for i in range(self.vocab_size)]
        self.newline_ids: frozenset[int] = frozenset(
            i
            for i, p in enumerate(self._pieces)
            if (b"\n" in p if isinstance(p, bytes) else ("\n" in p and p not in SPECIAL_TOKENS))
        )
        alphabet = set(_BYTE_OF_CHAR.values())
        present = {
            _BYTE_OF_CHAR[t]
            for t in tokenizer.get_vocab(with_added_tokens=False)
            if len(t) == 1 and t in _BYTE_OF_CHAR
        }
        # False for the original scripts' files: bytes never seen in training map to <UNK>.
        self.full_byte_alphabet: bool = self._byte_level and present == alphabet

    def _piece_bytes(self, token_id: int) -> bytes | str:
        """The bytes a token stands for, or the special token's name (a str) for specials."""
        token = self._tok.id_to_token(token_id)
        if token is None:
            return ""
        if token in SPECIAL_TOKENS or not self._byte_level:
            return token
        try:
            return bytes(_BYTE_OF_CHAR[c] for c in token)
        except KeyError:
            return token

    def token_bytes(self, token_id: int) -> bytes | None:
        """The exact bytes a token stands for (what bits per byte counts);
        None for special tokens and for tokens of a non-byte-level vocabulary."""
        piece = self._pieces[token_id]
        return piece if isinstance(piece, bytes) else None

    def __repr__(self) -> str:
        return f"TacticsTokenizer({str(self.path)!r}, kind={self.kind!r}, vocab_size={self.vocab_size})"

    @property
    def special_tokens(self) -> dict[str, int]:
        """Name -> id of the special tokens this file has."""
        out = {}
        for name in SPECIAL_TOKENS:
            tid = self._tok.token_to_id(name)
            if tid is not None:
                out[name] = tid
        return out

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode many texts at once (parallel in Rust; ~10x faster than a loop of `encode`)."""
        fast = getattr(self._tok, "encode_batch_fast", None) or self._tok.encode_batch
        return [e.ids for e in fast(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; special tokens (<EOS>, <PAD>) are dropped."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def token_pieces(self, ids: Iterable[int]) -> list[str]:
        """The text of each token, for display.

        Special tokens show as their name ("<EOS>"). A token that holds only part
        of a multi-byte character shows its bytes as `\\xNN`.
        """
        out = []
        for i in ids:
            i = int(i)
            p = self._pieces[i] if 0 <= i < len(self._pieces) else f"<id {i}?>"
            out.append(p.decode("utf-8", errors="backslashreplace") if isinstance(p, bytes) else p)
        return out

    def render_boundaries(self, text: str) -> list[str]:
        """`text` cut at token boundaries: ''.join(pieces) == text (with the full byte alphabet;
        an original tokenizer shows "<UNK>" for characters it cannot encode).

        Tokens that split one character (bytes of an emoji) are joined into one
        piece, so every piece is printable. The TUI and `tactics tokenizer show`
        draw these with visible boundaries.
        """
        ids = self.encode(text)
        if not self._byte_level:
            return self.token_pieces(ids)
        pieces: list[str] = []
        buf = b""
        for i in ids:
            p = self._pieces[i]
            buf += p if isinstance(p, bytes) else p.encode("utf-8")
            try:
                pieces.append(buf.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # a character continues in the next token
            buf = b""
        if buf:
            pieces.append(buf.decode("utf-8", errors="replace"))
        return pieces


def format_boundaries(pieces: list[str], sep: str = "|") -> str:
    """Plain-text view of `render_boundaries`: `sep` between tokens, ↵ before each line break.

    No separator is drawn right after a line break (the break itself is the boundary).
    """
    out: list[str] = []
    for n, piece in enumerate(pieces):
        if n and not pieces[n - 1].endswith("\n"):
            out.append(sep)
        out.append(piece.replace("\n", "↵\n"))
    return "".join(out)


def load_tokenizer(path: str | os.PathLike) -> TacticsTokenizer:
    """Load a tokenizer.json (or a folder holding one), ours or the original scripts'."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise TacticsError(f"tokenizer file not found: {path}; run `tactics tokenizer train` first")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TacticsError(f"cannot read tokenizer file {path}: {exc.strerror or exc}") from None
    from tokenizers import Tokenizer

    def corrupt(why: str) -> TacticsError:
        why = " ".join(str(why).split())[:160]
        return TacticsError(
            f"corrupt tokenizer file {path} ({why}); retrain it with `tactics tokenizer train`"
            " or restore the file the model was trained with"
        )

    try:
        text = data.decode("utf-8")
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        raise corrupt(exc) from None
    try:
        tok = Tokenizer.from_str(text)
    except Exception as exc:  # tokenizers raises a bare Exception
        raise corrupt(exc) from None
    byte_level = (spec.get("decoder") or {}).get("type") == "ByteLevel"
    return TacticsTokenizer(tok, path, hashlib.sha256(data).hexdigest(), detect_kind(spec), byte_level)


# ---------------------------------------------------------------- training


@dataclass
class TokenizerReport:
    """What `train_tokenizer` made and measured (also `tactics tokenizer train --json`)."""

    vocab_size: int  # reached
    vocab_requested: int
    compression: float  # characters per token over the whole corpus
    tokens: int
    chars: int
    bytes: int
    files: int
    train_files: int  # files of the training split (the held-out theorems excluded)
    learned_files: int  # of those, the files BPE learned from (all, or a sample: DEFAULT_SAMPLE_BYTES)
    learned_bytes: int
    heldout_compression: float | None  # chars per token on the held-out theorems alone
    seconds: float
    path: str
    kind: str
    sha256: str
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"file", "problem"}
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_vocab_size(vocab_size: int) -> None:
    if not isinstance(vocab_size, int) or not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise TacticsError(
            f"vocab size {vocab_size} is out of range; use {MIN_VOCAB}..{MAX_VOCAB}"
            f" (256 byte symbols + {len(SPECIAL_TOKENS)} special tokens + merges; 4096 is the usual choice)"
        )


# BPE learns from at most this many bytes of the training split: a `lines` trainer counts every
# distinct line, and on the whole acornlib (690 MB) it held 5.3 GB. A sample of whole files,
# chosen by a hash of the name (stable when files are added), keeps it bounded.
DEFAULT_SAMPLE_BYTES = 64 * 2**20


@dataclass
class _CorpusScan:
    """What one streaming pass over the corpus tells the trainer (no file text kept)."""

    names: list[str]
    heldout: list[bool]
    file_bytes: list[int]
    skipped: list[dict[str, str]]


def _on_problem(skipped: list[dict[str, str]]):
    def record(problem) -> None:
        skipped.append({"file": str(getattr(problem, "file", "?")), "problem": str(getattr(problem, "problem", problem))})

    return record


def _scan_corpus(data_dir: Path, holdout_fraction: float, progress: ProgressFn | None,
                 cancel: CancelToken | None) -> _CorpusScan:
    from tactics_core.gpt.corpus import iter_corpus

    scan = _CorpusScan([], [], [], [])

    def reading(done: int, total: int | None, message: str = "") -> None:
        report(progress, done, total, message if "reading" in message else f"reading {message}".strip())

    for pf in iter_corpus(data_dir, on_problem=_on_problem(scan.skipped), progress=reading, cancel=cancel):
        scan.names.append(pf.name)
        scan.heldout.append(holdout_fraction > 0 and is_validation_key(pf.theorem_key(), holdout_fraction))
        scan.file_bytes.append(len(pf.text().encode("utf-8")))
    return scan


def _texts(data_dir: Path, wanted: set[str] | None, cancel: CancelToken | None) -> Iterator[tuple[str, str]]:
    """(name, text) of the corpus's good files in name order (only `wanted` names, if given)."""
    from tactics_core.gpt.corpus import iter_corpus

    for pf in iter_corpus(data_dir, cancel=cancel):
        if wanted is None or pf.name in wanted:
            yield pf.name, pf.text()


def _feed(texts: Iterator[tuple[str, str]], total: int, progress: ProgressFn | None,
          cancel: CancelToken | None) -> Iterator[str]:
    """Hand texts to the BPE trainer, checking cancel and reporting as it goes."""
    n = 0
    for n, (_name, text) in enumerate(texts):
        if n % 256 == 0:
            check(cancel)
            report(progress, n, total, "counting words")
        yield text
    report(progress, total, total, "counting words")
    report(progress, 0, None, "merging pairs (the trainer gives no progress here)")


def train_tokenizer(
    data_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    vocab_size: int = 4096,
    kind: str = DEFAULT_KIND,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    holdout_fraction: float = DEFAULT_VAL_FRACTION,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
) -> TokenizerReport:
    """Train a BPE tokenizer on the training split; save `<output_dir>/tokenizer.json` atomically.

    The theorems the trainer will hold out for validation (the same split by
    theorem, `holdout.is_validation_key`, with `holdout_fraction` = the presets'
    `val_fraction`) are left out of BPE training: a `lines` vocabulary learns
    whole proof lines, and seeing the validation files would make every
    validation bits/byte optimistic. 0 trains on every file. BPE learns from at
    most `sample_bytes` of training files (a stable sample by file name; 0 = all),
    so memory stays bounded; the corpus is streamed, never held. Compression is
    measured on the whole corpus (and on the held-out part alone). A cancel or
    an error at any point leaves the previous tokenizer.json (if any) untouched.

    The stages: `_check_request`, `_scan_corpus` (sizes and split), `_choose_files`
    (what BPE learns from), `_learn_bpe`, `_measure` (compression), `_save`.
    """
    start = time.monotonic()
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    _check_request(vocab_size, kind, output_dir, holdout_fraction, sample_bytes)
    out_path = output_dir / TOKENIZER_FILE
    scan = _scan_corpus(data_dir, holdout_fraction, progress, cancel)
    skipped = scan.skipped
    if not scan.names:
        why = f" ({len(skipped)} skipped, e.g. {skipped[0]['file']}: {skipped[0]['problem']})" if skipped else ""
        raise TacticsError(
            f"no usable proof files in {data_dir}{why}; see `tactics corpus stats --data-dir {data_dir}`"
        )
    check(cancel)
    chosen = _choose_files(scan, sample_bytes)
    tok = _learn_bpe(kind, vocab_size, data_dir, chosen.learn, progress, cancel)
    measured = _measure(tok, data_dir, dict(zip(scan.names, chosen.heldout)), len(scan.names), progress, cancel)
    check(cancel)
    reached = tok.get_vocab_size(with_added_tokens=True)
    warnings = _warnings(reached, vocab_size, kind, chosen, skipped, data_dir)
    sha = _save(tok, out_path, warnings)
    return TokenizerReport(
        vocab_size=reached,
        vocab_requested=vocab_size,
        compression=round(measured.chars / max(1, measured.tokens), 4),
        tokens=measured.tokens,
        chars=measured.chars,
        bytes=sum(scan.file_bytes),
        files=len(scan.names),
        train_files=len(chosen.train_names),
        learned_files=len(chosen.learn),
        learned_bytes=chosen.learned_bytes,
        heldout_compression=round(measured.heldout_chars / measured.heldout_tokens, 4) if measured.heldout_tokens else None,
        seconds=round(time.monotonic() - start, 3),
        path=str(out_path),
        kind=kind,
        sha256=sha,
        skipped=skipped,
        warnings=warnings,
    )


def _check_request(vocab_size: int, kind: str, output_dir: Path, holdout_fraction: float, sample_bytes: int) -> None:
    """Refuse what no training can do, before the corpus is read."""
    check_vocab_size(vocab_size)
    if kind not in KINDS:
        raise TacticsError(f"unknown tokenizer kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if output_dir.exists() and not output_dir.is_dir():
        raise TacticsError(f"output dir {output_dir} is a file; pass a folder with --output-dir")
    if not 0.0 <= holdout_fraction < 1.0:
        raise TacticsError(f"holdout fraction must be in [0, 1), got {holdout_fraction}")
    if sample_bytes < 0:
        raise TacticsError(f"the sample size must be 0 (every training file) or positive, got {sample_bytes}")


@dataclass
class _Chosen:
    """Which files are held out, which the trainer trains on, and which BPE learns from."""

    heldout: list[bool]  # per scanned file
    train_names: list[str]
    train_bytes: int
    learn: set[str]
    learned_bytes: int
    holdout_warning: str | None


def _choose_files(scan: _CorpusScan, sample_bytes: int) -> _Chosen:
    """The training files (all of them when every file is held out: a corpus of one or two
    theorems), and of those a stable sample by file name of at most `sample_bytes` for BPE."""
    heldout = scan.heldout
    holdout_warning = None
    if all(heldout):  # a corpus of one or two theorems: nothing left to learn from
        heldout = [False] * len(heldout)
        holdout_warning = "every file fell in the held-out split (a very small corpus), so the tokenizer was trained on all of them"
    train_names = [n for n, h in zip(scan.names, heldout) if not h]
    train_bytes = sum(b for b, h in zip(scan.file_bytes, heldout) if not h)
    learn = set(train_names)
    if sample_bytes and train_bytes > sample_bytes:
        share = sample_bytes / train_bytes
        learn = {n for n in train_names if stable_share(n) < share}
    learned_bytes = sum(b for n, b in zip(scan.names, scan.file_bytes) if n in learn)
    return _Chosen(heldout, train_names, train_bytes, learn, learned_bytes, holdout_warning)


def _learn_bpe(kind: str, vocab_size: int, data_dir: Path, learn: set[str], progress: ProgressFn | None,
               cancel: CancelToken | None) -> Tokenizer:
    """BPE trained on the `learn` files, streamed; the special tokens checked at their ids."""
    from tokenizers import pre_tokenizers, trainers

    tok = _new_tokenizer(kind)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    with KeepAlive(progress) as alive:  # the merge phase reports nothing itself
        tok.train_from_iterator(_feed(_texts(data_dir, learn, cancel), len(learn), alive, cancel), trainer=trainer,
                                length=len(learn))
    check(cancel)
    for want_id, name in enumerate(SPECIAL_TOKENS):  # a guard, not an expectation
        if tok.token_to_id(name) != want_id:
            raise TacticsError(f"internal error: {name} got id {tok.token_to_id(name)}, expected {want_id}")
    return tok


@dataclass
class _Compression:
    tokens: int = 0
    chars: int = 0
    heldout_tokens: int = 0
    heldout_chars: int = 0


def _measure(tok: Tokenizer, data_dir: Path, held: dict[str, bool], total: int, progress: ProgressFn | None,
             cancel: CancelToken | None) -> _Compression:
    """Tokens and characters over the whole corpus (what the trainer will see) and over the
    held-out files alone, streamed a chunk at a time."""
    if hasattr(tok, "encode_special_tokens"):
        tok.encode_special_tokens = True
    encode = getattr(tok, "encode_batch_fast", None) or tok.encode_batch
    figures = _Compression()
    done = 0
    texts = _texts(data_dir, None, cancel)
    while True:
        chunk = [item for _, item in zip(range(_ENCODE_CHUNK), texts)]
        if not chunk:
            break
        check(cancel)
        report(progress, done, total, "measuring compression")
        counts = [len(e.ids) for e in encode([t for _, t in chunk], add_special_tokens=False)]
        for (name, text), count in zip(chunk, counts):
            figures.tokens += count
            figures.chars += len(text)
            if held.get(name):
                figures.heldout_tokens += count
                figures.heldout_chars += len(text)
        done += len(chunk)
    report(progress, total, total, "measuring compression")
    return figures


def _warnings(reached: int, vocab_size: int, kind: str, chosen: _Chosen, skipped: list[dict[str, str]],
              data_dir: Path) -> list[str]:
    """What the user should know of this tokenizer: a vocabulary short of the asked size, the
    hold-out dropped, a sampled BPE, skipped files."""
    warnings: list[str] = []
    if reached < vocab_size:
        hint = (" (normal for seed: its word regex keeps tokens inside words, and every frequent word "
                "already is one)" if kind == "seed" else "")
        warnings.append(
            f"vocabulary reached {reached:,} of the {vocab_size:,} asked: the corpus ran out of pairs to merge"
            f"{hint}; the model's vocab_size will be {reached:,}"
        )
    if chosen.holdout_warning:
        warnings.append(chosen.holdout_warning)
    if chosen.learned_bytes < chosen.train_bytes:
        warnings.append(
            f"BPE learned from a sample: {len(chosen.learn):,} of the {len(chosen.train_names):,} training files, "
            f"{chosen.learned_bytes / 2**20:,.0f} of {chosen.train_bytes / 2**20:,.0f} MB (--sample-mb 0 learns from all, "
            "with memory that grows with the corpus)"
        )
    if skipped:
        warnings.append(
            f"skipped {len(skipped)} bad file(s), e.g. {skipped[0]['file']}: {skipped[0]['problem']}"
            f"; see `tactics corpus stats --data-dir {data_dir}`"
        )
    return warnings


def _save(tok: Tokenizer, out_path: Path, warnings: list[str]) -> str:
    """Write tokenizer.json atomically; its sha256. Replacing a different one warns (in
    `warnings`) when checkpoints of an old layout sit beside it and no longer match."""
    old_sha = file_sha256(out_path) if out_path.is_file() else None
    new_json = tok.to_str(pretty=True)
    try:
        with atomic_path(out_path) as tmp:
            tmp.write_text(new_json, encoding="utf-8")
    except OSError as exc:
        raise TacticsError(f"cannot write {out_path}: {exc.strerror or exc}; check --output-dir") from None
    sha = file_sha256(out_path)
    if old_sha is not None and old_sha != sha:
        # Runs in runs/NAME keep their own tokenizer copy; only an old layout's checkpoints break.
        output_dir = out_path.parent
        models = sorted(p for p in output_dir.glob("*.pt") if not p.is_symlink())
        if models:
            warnings.append(
                f"replaced {out_path}: the {len(models)} checkpoint(s) in {output_dir} were trained with the"
                " previous tokenizer and no longer match it; train again or restore the old tokenizer.json"
            )
    return sha
