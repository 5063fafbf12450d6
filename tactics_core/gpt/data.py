"""Training data: the splits a layout's rows go to, packed batches, the dataset of a run.

The hold-out (which files are validation) is `holdout.py`, the tokenized corpus
`token_cache.py`; both are re-exported here, where the trainer has always found them.

Why each piece exists:

* **Two layouts** (`training.layout`):
  - `prover` (the default): each file becomes exactly the token stream the
    Acorn prover has in its cache (`prover.encode_stream`): the prompt without
    `@P`, front-truncated to `context_length - 100` tokens as the prover cuts
    it, then `nl, line 1, nl, line 2, ... nl` - the model learns to write a
    line after the prover's newline token and to end it with that token.
    Nothing follows the last line's newline: the prover stops when Acorn's
    checker finds the contradiction, so there is no end-of-proof token to learn.
    One stream per row, starting at position 0 as in the prover; batches are
    made of streams of similar length, so padding stays small. Tokens past the
    context (positions the prover can never reach) are dropped.
  - `file` (the original scripts' format): whole files (header, `@P`, proof,
    then EOS) packed greedily into rows of `context_length + 1` tokens;
    attention is plain causal across the EOS separators; files longer than a
    row are cut into windows.
  Each layout is one object of `tactics_core.gpt.layouts`, which encodes the files;
  its `prover_stream` picks the split here and its `separator` the masking.
  Padding never counts in the loss (targets set to `IGNORE_INDEX`).
* **Roles.** Every token carries a role (`prover.ROLE_CONTEXT`,
  `ROLE_PROOF`, or `ROLE_FED` for the newline the prover feeds before the first
  line, which is never a target), so the loss can weight context below proof
  (`training.context_weight`) and evaluation reports proof-line figures.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Iterator, Protocol, Sequence

from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken, ProgressFn, check, report
from tactics_core.gpt.holdout import (  # re-exported: the trainer and the CLI import them from here
    DEFAULT_VAL_FRACTION, SPLITS, file_modules, is_validation_key, module_key, split_corpus, split_keys, stable_share,
)
from tactics_core.gpt.layouts import DEFAULT_LAYOUT, layout_named
from tactics_core.gpt.token_cache import (  # re-exported, as above
    ENCODE_CHUNK, CorpusFiles, TokenCache, file_encoder, load_token_cache, store_meta, token_byte_lengths,
)

IGNORE_INDEX = -100
BUCKET_BATCHES = 16  # prover layout: streams are sorted by length within groups of this many batches


# ----------------------------------------------------------------------------
# Packing and batches


@dataclass
class Batch:
    """One micro-batch: inputs [B, T], targets [B, T] (IGNORE_INDEX where not scored).

    `proof` [B, T] marks targets that are proof tokens (prover.ROLE_PROOF).
    """

    inputs: Any  # np.ndarray int64
    targets: Any  # np.ndarray int64
    proof: Any  # np.ndarray bool
    n_tokens: int  # targets that count
    n_bytes: int  # UTF-8 bytes of those targets
    n_proof_tokens: int = 0
    n_proof_bytes: int = 0
    row_ids: tuple[int, ...] = ()  # the split's rows these are (what a sampled loss draws by)

    def to_torch(self, device: Any):
        import torch

        x = torch.from_numpy(self.inputs).to(device, non_blocking=True)
        y = torch.from_numpy(self.targets).to(device, non_blocking=True)
        return x, y

    def weight_sum(self, context_weight: float) -> float:
        return self.n_proof_tokens + context_weight * (self.n_tokens - self.n_proof_tokens)

    def loss_targets(self, context_weight: float, sample_seed: Sequence[int] | None = None):
        """(flat positions [N], targets [N], weights [N] or None): the targets the training
        loss reads, so the output layer runs on those positions only.

        Without `sample_seed` every scored target, the prompt's weighing `context_weight`
        (none at all when it is 0). With it and 0 < context_weight < 1, each prompt target is
        kept with probability `context_weight` at weight 1 (proof targets always): the same
        loss in expectation, on fewer positions. The draw is a pure function of
        (sample_seed, row id), so a resumed or data-parallel run draws the same."""
        import numpy as np

        scored = self.targets != IGNORE_INDEX
        if context_weight == 0.0:
            scored &= self.proof
        elif sample_seed is not None and context_weight < 1.0:
            width = self.targets.shape[1]
            draw = np.stack([np.random.default_rng([*map(int, sample_seed), int(r)]).random(width)
                             for r in self.row_ids])
            scored &= self.proof | (draw < context_weight)
        flat = np.flatnonzero(scored.reshape(-1))
        targets = self.targets.reshape(-1)[flat]
        weights = None
        if sample_seed is None and context_weight not in (0.0, 1.0):
            weights = np.where(self.proof.reshape(-1)[flat], np.float32(1.0), np.float32(context_weight))
        return flat, np.ascontiguousarray(targets), weights


def _make_batch(cache: TokenCache, rows: Any, score: Any, roles: Any, row_ids: Sequence[int] = ()) -> Batch:
    """Rows of row_len tokens (+ what is scored, + roles) -> a Batch of inputs/targets."""
    import numpy as np

    from tactics_core.gpt.prover_replica import ROLE_FED, ROLE_PROOF

    score[:, 0] = False  # the first token of a row has nothing before it
    score &= roles != ROLE_FED  # the newline the prover feeds itself is never a target
    if layout_named(cache.layout).separator and not cache.learn_sep:
        score &= rows != cache.sep_id
    inputs = rows[:, :-1]
    targets = np.where(score[:, 1:], rows[:, 1:], IGNORE_INDEX)
    proof = score[:, 1:] & (roles[:, 1:] == ROLE_PROOF)
    scored = targets[targets != IGNORE_INDEX]
    proof_targets = rows[:, 1:][proof]
    return Batch(
        inputs=np.ascontiguousarray(inputs),
        targets=np.ascontiguousarray(targets),
        proof=proof,
        n_tokens=int(scored.size),
        n_bytes=int(cache.token_bytes[scored].sum()),
        n_proof_tokens=int(proof_targets.size),
        n_proof_bytes=int(cache.token_bytes[proof_targets].sum()),
        row_ids=tuple(int(r) for r in row_ids),
    )


class Split(Protocol):
    """What the trainer and its evaluation read of a split: `ProverSplit` (prover layout) or
    `PackedSplit` (file layout), so neither needs to know which layout it trains. Row ids are
    numpy int64 arrays (a slice of an epoch's order)."""

    n_rows: int
    padding_fraction: float  # of the targets of a batch, in the split's own batching
    n_windowed_files: int  # files longer than a row, cut into windows (file layout)

    def n_batches(self, batch_size: int) -> int: ...

    def epoch_order(self, epoch: int, batch_size: int) -> Any:
        """The row ids of one epoch, in order: a pure function of (seed, epoch[, batch_size])."""
        ...

    def batch(self, row_ids: Sequence[int]) -> Batch: ...

    def iter_epoch(self, epoch: int, batch_size: int, start: int = 0) -> Iterator[Batch]: ...

    def iter_fixed(self, batch_size: int, max_batches: int = 0) -> Iterator[Batch]: ...

    def fixed_rows(self, batch_size: int, max_batches: int = 0) -> Iterator[Any]: ...


class _Split:
    """What both layouts' splits share: batches of an epoch (resumable), and a fixed order for
    evaluation. Subclasses give `n_rows`, `epoch_order(epoch, batch_size)`, `_fixed_order(batch_size)`
    and `batch(row_ids)`."""

    n_rows: int

    def n_batches(self, batch_size: int) -> int:
        return math.ceil(self.n_rows / batch_size)

    def iter_epoch(self, epoch: int, batch_size: int, start: int = 0):
        """Micro-batches of one epoch from batch index `start` (for resume)."""
        order = self.epoch_order(epoch, batch_size)
        for k in range(start, self.n_batches(batch_size)):
            yield self.batch(order[k * batch_size : (k + 1) * batch_size])

    def iter_fixed(self, batch_size: int, max_batches: int = 0):
        """Micro-batches in a fixed order (validation: the same rows every time, so
        evaluations compare; the first `max_batches` are a fair sample of the split)."""
        for ids in self.fixed_rows(batch_size, max_batches):
            yield self.batch(ids)

    def fixed_rows(self, batch_size: int, max_batches: int = 0):
        """The row ids of `iter_fixed`'s batches (data-parallel evaluation deals them to ranks)."""
        order = self._fixed_order(batch_size)
        n = self.n_batches(batch_size)
        if max_batches:
            n = min(n, max_batches)
        for k in range(n):
            yield order[k * batch_size : (k + 1) * batch_size]


class PackedSplit(_Split):
    """The files of one split cut into items and packed into rows of ctx + 1 tokens.

    Packing happens once (best fit, in an order drawn from `seed`), so the
    number of rows, and so the true number of steps, is fixed; each epoch
    visits the rows in its own order drawn from (seed, epoch), which is all a
    resumed run needs to continue exactly where it stopped.

    A file of L tokens (separator included) that fits a row is one item. A
    longer one is cut into windows starting every ctx tokens (one token of
    overlap, so every token is predicted once; the overlap token of a window
    is not scored again).
    """

    def __init__(
        self,
        cache: TokenCache,
        file_indices: Sequence[int],
        context_length: int,
        seed: int = 0,
        shuffle_packing: bool = True,
    ) -> None:
        import numpy as np

        self.cache = cache
        self.context_length = int(context_length)
        self.row_len = self.context_length + 1
        self.file_indices = np.asarray(file_indices, dtype=np.int64)
        self.seed = int(seed)
        ctx, row_len = self.context_length, self.row_len
        starts_all = cache.starts[self.file_indices]
        lengths = cache.lengths[self.file_indices]
        n_chunks = np.where(lengths <= row_len, 1, np.ceil((lengths - 1) / ctx).astype(np.int64))
        n_chunks = np.maximum(n_chunks, 1)
        item_file = np.repeat(np.arange(len(self.file_indices)), n_chunks)
        first = np.cumsum(n_chunks) - n_chunks
        chunk_no = np.arange(int(n_chunks.sum())) - np.repeat(first, n_chunks)
        self.item_start = starts_all[item_file] + chunk_no * ctx  # absolute offset into cache.tokens
        self.item_len = np.minimum(row_len, lengths[item_file] - chunk_no * ctx)
        self.item_cont = chunk_no > 0  # a later window: its first token was scored before
        self.n_windowed_files = int((n_chunks > 1).sum())
        self.rows = self._pack(shuffle_packing)
        if not shuffle_packing:
            # Dense packing puts the longest files first; a fixed shuffle makes the first
            # `eval_batches` batches a fair sample of the split (the same in every run).
            perm = np.random.default_rng(0x5EED).permutation(len(self.rows))
            self.rows = [self.rows[i] for i in perm]
        self.n_rows = len(self.rows)
        used = int(self.item_len.sum())
        self.padding_fraction = 1.0 - used / max(1, self.n_rows * row_len)

    def _pack(self, shuffle: bool) -> list[list[int]]:
        """Best-fit bin packing of items into rows of row_len tokens."""
        import bisect

        import numpy as np

        n = len(self.item_len)
        if shuffle:
            order = np.random.default_rng([self.seed, 0x9ACC]).permutation(n)
        else:  # first-fit decreasing: the densest fixed packing (validation)
            order = np.argsort(-self.item_len, kind="stable")
        rows: list[list[int]] = []
        open_space: list[tuple[int, int]] = []  # (free tokens, row index), sorted
        min_len = int(self.item_len.min()) if n else 1
        for i in order.tolist():
            length = int(self.item_len[i])
            if length >= self.row_len:
                rows.append([i])
                continue
            k = bisect.bisect_left(open_space, (length, -1))
            if k < len(open_space):
                free, r = open_space.pop(k)
                rows[r].append(i)
                free -= length
            else:
                rows.append([i])
                r = len(rows) - 1
                free = self.row_len - length
            if free >= min_len:
                bisect.insort(open_space, (free, r))
        return rows

    def epoch_order(self, epoch: int, batch_size: int = 0):
        """The row order of one epoch: a pure function of (seed, epoch)."""
        import numpy as np

        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.n_rows)

    def batch(self, row_ids: Sequence[int]) -> Batch:
        """Rows → inputs/targets; padding and re-scored window tokens masked out."""
        import numpy as np

        cache = self.cache
        rows = np.full((len(row_ids), self.row_len), cache.pad_id, dtype=np.int64)
        score = np.zeros((len(row_ids), self.row_len), dtype=bool)
        roles = np.zeros((len(row_ids), self.row_len), dtype=np.uint8)
        for b, r in enumerate(row_ids):
            pos = 0
            for i in self.rows[int(r)]:
                s, length = int(self.item_start[i]), int(self.item_len[i])
                rows[b, pos : pos + length] = cache.tokens[s : s + length]
                roles[b, pos : pos + length] = cache.roles[s : s + length]
                score[b, pos : pos + length] = True
                if self.item_cont[i]:
                    score[b, pos] = False
                pos += length
        return _make_batch(cache, rows, score, roles, row_ids)

    def _fixed_order(self, batch_size: int):
        import numpy as np

        return np.arange(self.n_rows)


class ProverSplit(_Split):
    """The files of one split as prover streams, one per row, in length-bucketed batches.

    Each stream is front-truncated exactly as the prover truncates the prompt
    (`prover.prompt_budget`), starts at position 0, and is cut after
    `context_length + 1` tokens (the prover can never use later positions;
    such files are counted in `n_overflow_files`). A batch is as long as its
    longest stream; within each group of `BUCKET_BATCHES` batches the streams
    are sorted by length, so padding is small. The order of an epoch is a pure
    function of (seed, epoch, batch_size), which is all an exact resume needs.
    """

    def __init__(
        self,
        cache: TokenCache,
        file_indices: Sequence[int],
        context_length: int,
        seed: int = 0,
        batch_size: int = 8,
        shuffle: bool = True,
    ) -> None:
        import numpy as np

        from tactics_core.gpt.prover_replica import prompt_budget

        self.cache = cache
        self.context_length = int(context_length)
        self.row_len = self.context_length + 1
        self.seed = int(seed)
        idx = np.asarray(file_indices, dtype=np.int64)
        starts = cache.starts[idx]
        lengths = cache.lengths[idx]
        cut = np.maximum(0, cache.prompt_lens[idx] - prompt_budget(self.context_length))
        full = lengths - cut
        keep = full >= 2  # at least one target
        self.file_indices = idx[keep]
        self.item_start = (starts + cut)[keep]
        self.item_len = np.minimum(self.row_len, full[keep])
        self.n_overflow_files = int((full[keep] > self.row_len).sum())
        self.n_windowed_files = 0
        self.n_rows = len(self.file_indices)
        self.rows = [[i] for i in range(self.n_rows)]
        self._fixed = None if shuffle else self._bucketed(np.random.default_rng([0x5EED, self.seed]), batch_size)
        used = int(self.item_len.sum())
        order = self._fixed if self._fixed is not None else self.epoch_order(0, batch_size)
        padded = sum(
            len(order[k : k + batch_size]) * int(self.item_len[order[k : k + batch_size]].max())
            for k in range(0, self.n_rows, max(1, batch_size))
        )
        self.padding_fraction = 1.0 - used / max(1, padded)

    def _bucketed(self, rng: Any, batch_size: int):
        import numpy as np

        batch_size = max(1, int(batch_size))
        perm = rng.permutation(self.n_rows)
        group = batch_size * BUCKET_BATCHES
        batches: list[Any] = []
        for lo in range(0, self.n_rows, group):
            chunk = perm[lo : lo + group]
            chunk = chunk[np.argsort(self.item_len[chunk], kind="stable")]
            batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
        # Every batch but the split's last is full, so batch k starts at row k * batch_size.
        full = [b for b in batches if len(b) == batch_size]
        short = [b for b in batches if len(b) != batch_size]
        order = rng.permutation(len(full))
        flat = [full[i] for i in order] + short
        return np.concatenate(flat) if flat else np.zeros(0, dtype=np.int64)

    def epoch_order(self, epoch: int, batch_size: int = 8):
        """The row order of one epoch: a pure function of (seed, epoch, batch_size)."""
        import numpy as np

        return self._bucketed(np.random.default_rng([self.seed, int(epoch)]), batch_size)

    def batch(self, row_ids: Sequence[int]) -> Batch:
        """Streams -> inputs/targets, as long as the longest one; padding masked out."""
        import numpy as np

        cache = self.cache
        width = int(max(self.item_len[int(r)] for r in row_ids))
        rows = np.full((len(row_ids), width), cache.pad_id, dtype=np.int64)
        score = np.zeros((len(row_ids), width), dtype=bool)
        roles = np.zeros((len(row_ids), width), dtype=np.uint8)
        for b, r in enumerate(row_ids):
            s, length = int(self.item_start[int(r)]), int(self.item_len[int(r)])
            rows[b, :length] = cache.tokens[s : s + length]
            roles[b, :length] = cache.roles[s : s + length]
            score[b, :length] = True
        return _make_batch(cache, rows, score, roles, row_ids)

    def _fixed_order(self, batch_size: int):
        import numpy as np

        order = self._fixed
        if order is None or len(order) != self.n_rows:
            order = self._bucketed(np.random.default_rng([0x5EED, self.seed]), batch_size)
        return order


@dataclass
class Dataset:
    """A tokenized corpus split by theorem or module and packed for one context length."""

    cache: TokenCache
    train: Split  # ProverSplit (prover layout) or PackedSplit (file layout)
    val: Split
    train_files: list[str]
    val_files: list[str]
    sample_prompt: str | None  # a fixed validation goal for the live sample (the text its layout asks the model with)
    sample_expected: str | None
    layout: str = DEFAULT_LAYOUT
    sample_file: Any = None  # that goal's ProofFile
    rename_variants: int = 0  # renamed copies of each training file in the training split
    split: str = "theorem"  # what decides a file's split: its theorem or its module (SPLITS)

    def summary(self) -> dict[str, Any]:
        return {
            "files": len(self.train_files) + len(self.val_files),  # corpus files (renamed copies not counted)
            "train_files": len(self.train_files),
            "val_files": len(self.val_files),
            "tokens": self.cache.n_tokens,
            "train_rows": self.train.n_rows,
            "val_rows": self.val.n_rows,
            "train_padding": round(self.train.padding_fraction, 4),
            "val_padding": round(self.val.padding_fraction, 4),
            "windowed_files": self.train.n_windowed_files + self.val.n_windowed_files,
            "layout": self.layout,
            "split": self.split,
            "rename_variants": self.rename_variants,
            "overflow_files": getattr(self.train, "n_overflow_files", 0) + getattr(self.val, "n_overflow_files", 0),
            "cache_reused": self.cache.from_cache,
            "bytes_exact": self.cache.bytes_exact,
            "skipped_files": len(self.cache.skipped),
        }


def load_dataset(
    data_dir: str | os.PathLike,
    tokenizer: Any,
    cache_dir: str | os.PathLike,
    context_length: int,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    layout: str = DEFAULT_LAYOUT,
    batch_size: int = 8,
    rename_variants: int = 0,
    split: str = "theorem",
) -> Dataset:
    """Read, tokenize (or reuse the cache), split by theorem or module and pack (file) or bucket (prover).

    `rename_variants` > 0 adds that many copies of every training file with its bound
    variables renamed (tactics_core.gpt.augment) to the training split; validation is untouched.
    """
    cache, files = load_token_cache(data_dir, tokenizer, cache_dir, progress=progress, cancel=cancel, layout=layout,
                                    compact=rename_variants <= 0)
    train_idx: list[int] = []
    val_idx: list[int] = []
    for i, key in enumerate(split_keys(data_dir, cache.names, cache.keys, split)):
        (val_idx if is_validation_key(key, val_fraction) else train_idx).append(i)
    if not train_idx or not val_idx:
        which = "validation" if not val_idx else "training"
        raise TacticsError(
            f"{data_dir}: the {which} split is empty ({cache.n_files} files, split by {split}, val_fraction "
            f"{val_fraction}); add proof files or change training.val_fraction"
        )
    train_files = [cache.names[i] for i in train_idx]  # corpus files only, not their renamed copies
    if rename_variants > 0:
        cache, train_idx = _with_variants(cache, files, train_idx, int(rename_variants), seed, tokenizer, cache_dir,
                                          progress, cancel)
    # The live sample: the first validation goal (by name) with a proof whose prompt is short.
    sample_prompt = sample_expected = sample_file = None
    limit = context_length // 2
    for i in val_idx:
        if int(cache.prompt_lens[i]) > limit:
            continue
        f = files[i]  # read from disk: only until one is found
        if f.proof:
            sample_file, sample_expected = f, f.proof[0]
            sample_prompt = layout_named(layout).prompt(tokenizer, f, context_length).text
            break
    if layout_named(layout).prover_stream:
        train = ProverSplit(cache, train_idx, context_length, seed=seed, batch_size=batch_size, shuffle=True)
        val = ProverSplit(cache, val_idx, context_length, seed=seed, batch_size=batch_size, shuffle=False)
    else:
        train = PackedSplit(cache, train_idx, context_length, seed=seed, shuffle_packing=True)
        val = PackedSplit(cache, val_idx, context_length, seed=seed, shuffle_packing=False)
    return Dataset(
        cache=cache,
        train=train,
        val=val,
        train_files=train_files,
        val_files=[cache.names[i] for i in val_idx],
        sample_prompt=sample_prompt,
        sample_expected=sample_expected,
        layout=layout,
        sample_file=sample_file,
        rename_variants=int(rename_variants),
        split=split,
    )


def _with_variants(cache: TokenCache, files: Sequence[Any], train_idx: list[int], count: int, seed: int,
                   tokenizer: Any, cache_dir: str | os.PathLike, progress: ProgressFn | None,
                   cancel: CancelToken | None):
    """The cache with `count` renamed copies of each training file appended, and the training
    indices with them. The copies are a pure function of the corpus, `count` and `seed`; their
    tokens go to the same content-keyed store as the corpus (made again only when new)."""
    import numpy as np

    from tactics_core.gpt.augment import variants
    from tactics_core.gpt.token_store import content_digest, open_store

    meta = store_meta(tokenizer, cache.layout)
    encode = file_encoder(tokenizer, cache.layout, cache.sep_id)
    digests: list[bytes] = []
    with open_store(cache_dir, meta) as store:
        for lo in range(0, len(train_idx), ENCODE_CHUNK):
            check(cancel)
            report(progress, lo, len(train_idx), f"renaming variables ({count} copies per training file)")
            copies = [v for i in train_idx[lo : lo + ENCODE_CHUNK] for v in variants(files[i], count, seed)]
            chunk = [content_digest(v.text()) for v in copies]
            new = {d: v for d, v in zip(chunk, copies) if not store.has(d)}
            if new:
                store.add(list(new.values()), list(new.keys()), encode, cache.token_bytes)
            digests += chunk
        report(progress, len(train_idx), len(train_idx), f"renaming variables ({count} copies per training file)")
        store.mark_used(cache.digests)
        store.mark_used(digests)
        store.commit()
        view = store.view(cache.digests + digests)
        tokens, roles = store.maps()
    n = cache.n_files
    extended = replace(
        cache,
        tokens=tokens,
        roles=roles,
        starts=view.starts,
        lengths=view.lengths,
        prompt_lens=view.prompt_lens,
        file_bytes=view.file_bytes,
        names=cache.names + [f"{cache.names[i]}~{v}" for i in train_idx for v in range(1, count + 1)],
        keys=cache.keys + [cache.keys[i] for i in train_idx for _ in range(count)],
        digests=cache.digests + digests,
        bytes_exact=view.bytes_exact,
        encoded=cache.encoded + store.appended,
    )
    return extended, list(train_idx) + list(range(n, n + len(digests)))


def masked_nll_sum(logits: Any, targets: Any, weights: Any = None):
    """Sum of token NLL (nats) over targets that count, each times its weight when
    `weights` [B, T] is given; padding adds exactly 0."""
    import torch.nn.functional as F

    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    if weights is None:
        return F.cross_entropy(flat_logits, targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum")
    nll = F.cross_entropy(flat_logits, targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none")
    return (nll * weights.reshape(-1)).sum()


def masked_nll_split(logits: Any, targets: Any, proof: Any):
    """(all scored NLL, proof-target NLL) sums in nats, for evaluation."""
    import torch.nn.functional as F

    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    )
    return nll.sum(), (nll * proof.reshape(-1).to(nll.dtype)).sum()
