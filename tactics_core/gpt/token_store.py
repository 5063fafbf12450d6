"""Tokenized proof files keyed by their content: an append-only store, read memory-mapped.

Why: a whole acornlib is ~200k files and ~80M tokens. Holding the tokens in RAM per process
(per DDP rank) and tokenizing everything again after a `git pull` of acornlib cost gigabytes
and minutes. Here each file is keyed by the sha256 of its text, so:

* a changed corpus tokenizes only the files whose text is new (a re-import renumbers files,
  so names are no key; content is);
* the tokens live in two flat files (`tokens.G.bin`, `roles.G.bin`) that every reader maps
  read-only: the pages are shared by all processes and ranks and loaded on demand;
* `index.npz` (per entry: digest, start, length, prompt tokens, bytes, bytes-exact) is the
  commit point: new tokens are appended and fsynced first, then the index is replaced
  atomically, so a kill at any instant leaves the previous store intact (bytes past the
  index's `n_tokens` are cut off by the next writer);
* when more than half of the store belongs to files no corpus has asked for in the last
  update, the store is rewritten with the live entries only under a new generation `G`
  (mapped old generations stay readable until their readers close them).

One store per (tokenizer, layout); writers take an flock on the folder's `lock` file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from tactics_core.common.atomic import atomic_path
from tactics_core.gpt.layouts import layout_named

STORE_VERSION = 1
STORE_PREFIX = "store-"
KEEP_STORES = 4  # stores of other tokenizers / layouts kept in a cache folder (least recently used go)
COMPACT_MIN_TOKENS = 1 << 20  # below this, garbage is not worth a rewrite

# encode(files) -> per file (token ids, roles, prompt tokens, UTF-8 bytes)
Encoder = Callable[[Sequence[Any]], Iterable[tuple[Sequence[int], Sequence[int], int, int]]]


def content_digest(text: str) -> bytes:
    """The key of a file's tokens: sha256 of its text (first 16 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def store_folder(cache_dir: str | os.PathLike, tokenizer_sha256: str, layout: str) -> Path:
    return Path(cache_dir) / f"{STORE_PREFIX}{layout}-{tokenizer_sha256[:16]}-v{STORE_VERSION}"


@dataclass
class StoreView:
    """Where the tokens of a list of files are in the store (arrays aligned with the list)."""

    starts: Any  # int64
    lengths: Any  # int64
    prompt_lens: Any  # int64
    file_bytes: Any  # int64
    bytes_exact: bool  # every file's token bytes add up to its byte count


class TokenStore:
    """One store folder, opened for an update (flock held until `close`)."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        import numpy as np

        self.folder = folder
        self.want_meta = meta  # version, layout, tokenizer, dtype, sep_id, learn_sep, pad_id
        self.dtype = np.dtype(meta["dtype"])
        folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(folder / "lock", "a+")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.generation = 0
        self.n_tokens = 0
        self.rows: dict[bytes, int] = {}
        self.starts: list[int] = []
        self.lengths: list[int] = []
        self.prompt_lens: list[int] = []
        self.file_bytes: list[int] = []
        self.exact: list[bool] = []
        self.used: set[int] = set()
        self.appended = 0  # files tokenized during this update
        self._read_index()
        self._tok_fh: Any = None
        self._role_fh: Any = None

    # -- reading ---------------------------------------------------------

    def _read_index(self) -> None:
        import numpy as np

        index = self.folder / "index.npz"
        if not index.is_file():
            return
        try:
            with np.load(index, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if any(meta.get(k) != v for k, v in self.want_meta.items()):
                    return  # another version or tokenizer: start afresh
                digests = z["digests"]
                self.starts = z["starts"].tolist()
                self.lengths = z["lengths"].tolist()
                self.prompt_lens = z["prompt_lens"].tolist()
                self.file_bytes = z["file_bytes"].tolist()
                self.exact = z["exact"].tolist()
            self.generation = int(meta["generation"])
            self.n_tokens = int(meta["n_tokens"])
            self.rows = {d.tobytes(): i for i, d in enumerate(digests)}  # uint8 rows: S16 would drop trailing NULs
            for name in ("tokens", "roles"):  # the index must not promise more than the data holds
                size = self._data_path(name).stat().st_size
                itemsize = self.dtype.itemsize if name == "tokens" else 1
                if size < self.n_tokens * itemsize:
                    raise ValueError("data file shorter than its index")
        except (OSError, ValueError, KeyError):
            self._reset()  # unreadable, torn or from another version: rebuild

    def _reset(self) -> None:
        self.generation += 1
        self.n_tokens = 0
        self.rows = {}
        self.starts, self.lengths, self.prompt_lens, self.file_bytes, self.exact = [], [], [], [], []

    def _data_path(self, name: str, generation: int | None = None) -> Path:
        return self.folder / f"{name}.{self.generation if generation is None else generation}.bin"

    def has(self, digest: bytes) -> bool:
        return digest in self.rows

    # -- writing ---------------------------------------------------------

    def add(self, files: Sequence[Any], digests: Sequence[bytes], encode: Encoder, token_bytes: Any) -> None:
        """Tokenize `files` (whose digests the store lacks) and append them."""
        import numpy as np

        if self._tok_fh is None:
            self._tok_fh = self._open_append("tokens", self.dtype.itemsize)
            self._role_fh = self._open_append("roles", 1)
        separator = layout_named(self.want_meta["layout"]).separator  # not part of the file's bytes
        ids_chunks, role_chunks = [], []
        for digest, (ids, roles, n_prompt, nbytes) in zip(digests, encode(files)):
            if digest in self.rows:  # the same text twice in one batch
                continue
            arr = np.asarray(ids, dtype=self.dtype)
            ids_chunks.append(arr)
            role_chunks.append(np.asarray(roles, dtype=np.uint8))
            scored = arr[:-1] if separator else arr
            self.rows[digest] = len(self.starts)
            self.starts.append(self.n_tokens)
            self.lengths.append(len(arr))
            self.prompt_lens.append(int(n_prompt))
            self.file_bytes.append(int(nbytes))
            self.exact.append(int(token_bytes[scored].sum()) == int(nbytes))
            self.n_tokens += len(arr)
            self.appended += 1
        if ids_chunks:
            self._tok_fh.write(np.concatenate(ids_chunks).tobytes())
            self._role_fh.write(np.concatenate(role_chunks).tobytes())

    def _open_append(self, name: str, itemsize: int):
        path = self._data_path(name)
        fh = open(path, "r+b" if path.exists() else "w+b")
        fh.truncate(self.n_tokens * itemsize)  # drop what a killed writer appended past the index
        fh.seek(self.n_tokens * itemsize)
        return fh

    def mark_used(self, digests: Iterable[bytes]) -> None:
        """These files are wanted: a compaction keeps them."""
        self.used.update(self.rows[d] for d in digests)

    def view(self, digests: Sequence[bytes]) -> StoreView:
        """The store rows of these files (each must be in the store). Take it after `commit`,
        which may compact the store."""
        import numpy as np

        rows = np.fromiter((self.rows[d] for d in digests), dtype=np.int64, count=len(digests))
        pick = lambda values, dtype: np.asarray(values, dtype=dtype)[rows]  # noqa: E731
        exact = pick(self.exact, bool)
        return StoreView(
            starts=pick(self.starts, np.int64),
            lengths=pick(self.lengths, np.int64),
            prompt_lens=pick(self.prompt_lens, np.int64),
            file_bytes=pick(self.file_bytes, np.int64),
            bytes_exact=bool(exact.all()) if len(exact) else True,
        )

    def commit(self, compact: bool = True) -> None:
        """Make what was appended durable, then publish the index (the commit point).
        Compacts first when most of the store is not marked used (unless `compact` is False)."""
        changed = self._tok_fh is not None
        for fh in (self._tok_fh, self._role_fh):
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        self._tok_fh = self._role_fh = None
        live = sum(self.lengths[r] for r in self.used)
        if compact and self.n_tokens >= COMPACT_MIN_TOKENS and live * 2 < self.n_tokens:
            self._compact()
            changed = True
        if changed or not (self.folder / "index.npz").is_file():
            self._write_index()
        else:
            os.utime(self.folder / "index.npz")  # recently used: pruned last

    def _compact(self) -> None:
        """Rewrite the store with the entries in use only, as the next generation."""
        import numpy as np

        old = self.generation
        tokens, roles = self.maps()
        keep = sorted(self.used, key=lambda r: self.starts[r])
        new_gen = old + 1
        starts: list[int] = []
        n = 0
        with open(self._data_path("tokens", new_gen), "wb") as tf, open(self._data_path("roles", new_gen), "wb") as rf:
            for r in keep:
                s, length = self.starts[r], self.lengths[r]
                tf.write(np.ascontiguousarray(tokens[s : s + length]).tobytes())
                rf.write(np.ascontiguousarray(roles[s : s + length]).tobytes())
                starts.append(n)
                n += length
            for fh in (tf, rf):
                fh.flush()
                os.fsync(fh.fileno())
        digests = {r: d for d, r in self.rows.items()}
        self.rows = {digests[r]: i for i, r in enumerate(keep)}
        self.lengths = [self.lengths[r] for r in keep]
        self.prompt_lens = [self.prompt_lens[r] for r in keep]
        self.file_bytes = [self.file_bytes[r] for r in keep]
        self.exact = [self.exact[r] for r in keep]
        self.starts = starts
        self.used = set(range(len(keep)))
        self.n_tokens = n
        self.generation = new_gen

    def _write_index(self) -> None:
        import numpy as np

        digests = np.zeros((len(self.rows), 16), dtype=np.uint8)
        for d, r in self.rows.items():
            digests[r] = np.frombuffer(d, dtype=np.uint8)
        meta = dict(self.want_meta, generation=self.generation, n_tokens=self.n_tokens)
        with atomic_path(self.folder / "index.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    digests=digests,
                    starts=np.asarray(self.starts, dtype=np.int64),
                    lengths=np.asarray(self.lengths, dtype=np.int64),
                    prompt_lens=np.asarray(self.prompt_lens, dtype=np.int64),
                    file_bytes=np.asarray(self.file_bytes, dtype=np.int64),
                    exact=np.asarray(self.exact, dtype=bool),
                    meta=np.array(json.dumps(meta)),
                )
        for path in self.folder.glob("*.bin"):  # older generations (their readers keep their inodes)
            if not path.name.endswith(f".{self.generation}.bin"):
                path.unlink(missing_ok=True)

    def maps(self) -> tuple[Any, Any]:
        """(tokens, roles) of the store, memory-mapped read-only."""
        import numpy as np

        if self.n_tokens == 0:
            return np.zeros(0, dtype=self.dtype), np.zeros(0, dtype=np.uint8)
        tokens = np.memmap(self._data_path("tokens"), dtype=self.dtype, mode="r", shape=(self.n_tokens,))
        roles = np.memmap(self._data_path("roles"), dtype=np.uint8, mode="r", shape=(self.n_tokens,))
        return tokens, roles

    def close(self) -> None:
        for fh in (self._tok_fh, self._role_fh):
            if fh is not None:
                fh.close()  # not committed: the index still says what is valid
        self._tok_fh = self._role_fh = None
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


@contextlib.contextmanager
def open_store(cache_dir: str | os.PathLike, meta: dict[str, Any]) -> Iterator[TokenStore]:
    """The store for `meta` (tokenizer sha256, layout, ...) under `cache_dir`, locked for an
    update; other stores beyond the `KEEP_STORES` most recently used are removed, and the
    single-file caches of earlier versions (`tokens-*.npz`) with them."""
    cache_dir = Path(cache_dir)
    folder = store_folder(cache_dir, str(meta["tokenizer_sha256"]), str(meta["layout"]))
    store = TokenStore(folder, meta)
    try:
        yield store
    finally:
        store.close()
    _prune(cache_dir, keep=folder)


def _prune(cache_dir: Path, keep: Path) -> None:
    for old in cache_dir.glob("tokens-*.npz"):
        old.unlink(missing_ok=True)
    stores = sorted(
        (p for p in cache_dir.glob(f"{STORE_PREFIX}*") if p.is_dir() and p != keep),
        key=lambda p: _mtime(p / "index.npz"),
        reverse=True,
    )
    for old in stores[KEEP_STORES - 1 :]:
        try:
            with open(old / "lock", "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # in use by a writer: leave it
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
