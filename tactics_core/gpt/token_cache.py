"""The token cache of a corpus: tokenized once, in a layout's encoding, mapped read-only.

Tokenizing a corpus takes long; the token ids are kept in a store under the workspace's
`checkpoints/cache/` (`token_store`), one per tokenizer and layout, keyed by each file's
text: a second run tokenizes nothing, a re-imported corpus only its changed files, and every
process maps the same pages read-only instead of holding the corpus.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, report
from tactics_core.gpt.layouts import DEFAULT_LAYOUT, layout_named

if TYPE_CHECKING:
    import numpy as np

CACHE_VERSION = 4  # 4: the content-keyed store (token_store)
ENCODE_CHUNK = 512


def token_byte_lengths(tokenizer: Any) -> "np.ndarray":
    """UTF-8 bytes each token id stands for (0 for special tokens).

    Summed over the tokens scored this gives the exact byte count for bits
    per byte: byte-level BPE tokens are byte strings, so a token that holds
    half a character counts exactly its share.
    """
    import numpy as np

    specials = set(tokenizer.special_tokens.values())
    out = np.zeros(tokenizer.vocab_size, dtype=np.int32)
    for i in range(tokenizer.vocab_size):
        if i in specials:
            continue
        raw = tokenizer.token_bytes(i)
        if raw is None:  # not a byte-level vocabulary: count the token's text
            raw = tokenizer.token_pieces([i])[0].encode("utf-8")
        out[i] = len(raw)
    return out


@dataclass
class TokenCache:
    """Every usable proof file of a corpus as token ids, in file-name order.

    File i's tokens are `tokens[starts[i]:starts[i] + lengths[i]]`, views into the
    memory-mapped content-keyed store (`token_store`): in the `file` layout encode(text)
    then one separator (`<EOS>`, or `<PAD>` for tokenizers without one); in the `prover`
    layout the untruncated prover stream (`prover.encode_stream`), whose first
    `prompt_lens[i]` tokens are the prompt. `roles` gives each token's role as a
    prediction target. `tokens` and `roles` may hold other files' tokens too (the store
    keeps what earlier versions of the corpus needed): use the per-file views.
    """

    tokens: Any  # np.memmap / ndarray uint16 or int32: the store
    roles: Any  # np.memmap / ndarray uint8 per store token: prover.ROLE_CONTEXT / ROLE_PROOF / ROLE_FED
    starts: Any  # np.ndarray int64 per file: where its tokens start in `tokens`
    lengths: Any  # np.ndarray int64 per file
    prompt_lens: Any  # np.ndarray int64 per file: prompt tokens (prover layout; context tokens in file layout)
    layout: str
    names: list[str]
    keys: list[str]  # theorem_key() per file
    digests: list[bytes]  # token_store.content_digest of each file's text
    file_bytes: Any  # np.ndarray int64: UTF-8 bytes of each file's text
    token_bytes: Any  # np.ndarray int32 per vocab id
    sep_id: int
    learn_sep: bool  # True when sep is <EOS> (the model learns where a file ends)
    pad_id: int
    bytes_exact: bool  # token byte lengths add up to every file's byte count
    path: Path | None  # the store folder (None: its index could not be written; the next load tokenizes again)
    encoded: int  # files tokenized by this load (0: everything came from the store)
    skipped: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        return len(self.names)

    @property
    def from_cache(self) -> bool:
        return self.encoded == 0

    @property
    def n_tokens(self) -> int:
        """Tokens of this corpus (not of the whole store)."""
        return int(self.lengths.sum())

    def file_tokens(self, i: int):
        s = int(self.starts[i])
        return self.tokens[s : s + int(self.lengths[i])]


class CorpusFiles(Sequence[Any]):
    """The parsed proof files of a TokenCache, read from disk when asked for: a whole
    acornlib's 200k ProofFiles would cost gigabytes held in a list."""

    def __init__(self, data_dir: Path, names: list[str]) -> None:
        self.data_dir = Path(data_dir)
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):  # type: ignore[override]
        from tactics_core.gpt.corpus import read_proof_file

        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return read_proof_file(self.data_dir / self.names[i])


def store_meta(tokenizer: Any, layout: str) -> dict[str, Any]:
    import numpy as np

    sep_id = tokenizer.eos_id if tokenizer.eos_id is not None else tokenizer.pad_id
    return {
        "version": CACHE_VERSION,
        "tokenizer_sha256": tokenizer.sha256,
        "layout": layout,
        "dtype": np.dtype(np.uint16 if tokenizer.vocab_size <= 65536 else np.int32).name,
        "sep_id": int(sep_id),
        "learn_sep": tokenizer.eos_id is not None,
        "pad_id": int(tokenizer.pad_id),
    }


def load_token_cache(
    data_dir: str | os.PathLike,
    tokenizer: Any,
    cache_dir: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    layout: str = DEFAULT_LAYOUT,
    compact: bool = True,
) -> tuple[TokenCache, CorpusFiles]:
    """The tokenized corpus in `layout`: files whose text the store under `cache_dir` has
    are taken from it, the others are tokenized and added (`token_store`).

    Returns (cache, files). The corpus is streamed once (to key each file by its text);
    nothing of it is held but names, keys and digests, so memory does not grow with the
    corpus text. `compact=False` keeps unused store entries (the caller adds more next).
    """
    from tactics_core.gpt.token_store import open_store

    data_dir = Path(data_dir)
    layout_named(layout)  # an unknown name fails here, before any work
    skipped: list[str] = []

    def on_problem(problem: Any) -> None:
        skipped.append(f"{getattr(problem, 'file', '?')}: {getattr(problem, 'problem', problem)}")

    meta = store_meta(tokenizer, layout)
    token_bytes = token_byte_lengths(tokenizer)
    encode = file_encoder(tokenizer, layout, meta["sep_id"])
    with open_store(cache_dir, meta) as store:
        names, keys, digests = _read_into_store(store, data_dir, encode, token_bytes, progress, cancel, on_problem)
        if not names:
            raise TacticsError(
                f"no usable proof files in {data_dir}; see `tactics corpus stats --data-dir {data_dir}`"
            )
        store.mark_used(digests)
        try:
            store.commit(compact=compact)
            path: Path | None = store.folder
        except OSError:
            path = None  # read-only folder: train anyway from what was written
        view = store.view(digests)
        tokens, roles = store.maps()
        encoded = store.appended
    cache = TokenCache(
        tokens=tokens,
        roles=roles,
        starts=view.starts,
        lengths=view.lengths,
        prompt_lens=view.prompt_lens,
        layout=layout,
        names=names,
        keys=keys,
        digests=digests,
        file_bytes=view.file_bytes,
        token_bytes=token_bytes,
        sep_id=int(meta["sep_id"]),
        learn_sep=bool(meta["learn_sep"]),
        pad_id=int(meta["pad_id"]),
        bytes_exact=view.bytes_exact,
        path=path,
        encoded=encoded,
        skipped=skipped,
    )
    report(progress, len(names), len(names), f"token cache: {encoded:,} files tokenized, "
           f"{len(names) - encoded:,} reused" if encoded else "token cache reused")
    return cache, CorpusFiles(data_dir, names)


def _read_into_store(store: Any, data_dir: Path, encode: Any, token_bytes: Any, progress: ProgressFn | None,
                     cancel: CancelToken | None, on_problem: Any) -> tuple[list[str], list[str], list[bytes]]:
    """Stream the corpus once: every file's name, theorem key and text digest, in corpus
    order; the files whose text the store lacks are tokenized into it, ENCODE_CHUNK at a time."""
    from tactics_core.gpt.corpus import iter_corpus
    from tactics_core.gpt.token_store import content_digest

    names: list[str] = []
    keys: list[str] = []
    digests: list[bytes] = []
    pending: list[Any] = []
    pending_digests: list[bytes] = []

    def flush() -> None:
        store.add(pending, pending_digests, encode, token_bytes)
        pending.clear()
        pending_digests.clear()

    def reading(done: int, total: int | None, message: str = "") -> None:
        new = store.appended + len(pending)
        report(progress, done, total, f"reading and tokenizing corpus ({new:,} new files)" if new
               else "reading corpus (token cache)")

    for f in iter_corpus(data_dir, on_problem=on_problem, progress=reading, cancel=cancel):
        digest = content_digest(f.text())
        names.append(f.name)
        keys.append(f.theorem_key())
        digests.append(digest)
        if not store.has(digest) and digest not in pending_digests:
            pending.append(f)
            pending_digests.append(digest)
            if len(pending) >= ENCODE_CHUNK:
                flush()
    if pending:
        flush()
    return names, keys, digests


def file_encoder(tokenizer: Any, layout: str, sep_id: int):
    """encode(files) -> per file (ids, roles, prompt tokens, UTF-8 bytes) in `layout`."""
    encoding = layout_named(layout)
    return lambda files: encoding.encode_files(tokenizer, list(files), sep_id)
