"""Data pipeline: theorem split, token cache, packing, loss masking, bits per byte."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tactics_core.gpt import data as D
from tactics_core.gpt.corpus import iter_corpus
from tactics_core.gpt.tokenizer import load_tokenizer, train_tokenizer

from conftest import copy_slice, shared_corpus


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """120 real files and a small `lines` tokenizer trained on them (once per module)."""
    root = tmp_path_factory.mktemp("data")
    src = shared_corpus("acornlib-2025-11")
    data_dir = copy_slice(src, root / "proofs", 120, start=600)
    train_tokenizer(data_dir, root / "tok", vocab_size=512, kind="lines")
    return data_dir, load_tokenizer(root / "tok" / "tokenizer.json"), root


def test_validation_key_is_a_pure_hash_with_the_right_share():
    keys = [f"theorem t{i}(a: Nat)" for i in range(4000)]
    first = [D.is_validation_key(k, 0.1) for k in keys]
    assert first == [D.is_validation_key(k, 0.1) for k in keys]
    share = sum(first) / len(keys)
    assert 0.08 < share < 0.12
    # A larger fraction only adds keys to validation, never moves one out.
    assert all(D.is_validation_key(k, 0.3) for k, v in zip(keys, first) if v)


def test_split_is_by_theorem_and_stable_when_files_are_added(corpus_2025):
    files = list(iter_corpus(corpus_2025))[:1500]
    train, val = D.split_corpus(files[:800], 0.1)
    assert train and val
    # Goal files of one theorem never straddle the split (real files: many goals per theorem).
    train_keys = {f.theorem_key() for f in train}
    val_keys = {f.theorem_key() for f in val}
    assert not train_keys & val_keys
    assert len(files[:800]) > len(train_keys | val_keys)  # theorems do have several goal files
    # Adding 700 files keeps every old file where it was.
    train2, val2 = D.split_corpus(files, 0.1)
    old_val = {f.name for f in val}
    old_train = {f.name for f in train}
    assert old_val <= {f.name for f in val2}
    assert old_train <= {f.name for f in train2}


def test_masked_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.tensor([[1, 2, D.IGNORE_INDEX, 3, D.IGNORE_INDEX], [D.IGNORE_INDEX, 0, 6, 6, 5]])
    got = float(D.masked_nll_sum(logits, targets))
    logp = torch.log_softmax(logits, dim=-1)
    want = 0.0
    for b in range(2):
        for t in range(5):
            if targets[b, t] != D.IGNORE_INDEX:
                want -= float(logp[b, t, targets[b, t]])
    assert got == pytest.approx(want, rel=1e-6)
    # Whatever the model predicts at padded positions changes nothing, and gets no gradient.
    logits2 = logits.clone()
    logits2[0, 2] += 100.0
    logits2[1, 0] -= 50.0
    assert float(D.masked_nll_sum(logits2, targets)) == pytest.approx(got, rel=1e-6)
    leaf = logits.clone().requires_grad_(True)
    D.masked_nll_sum(leaf, targets).backward()
    assert float(leaf.grad[0, 2].abs().sum()) == 0.0 and float(leaf.grad[1, 0].abs().sum()) == 0.0


def test_packing_scores_every_token_once_with_little_padding(small):
    data_dir, tok, root = small
    cache, _ = D.load_token_cache(data_dir, tok, root / "cache-pack", layout="file")
    assert cache.bytes_exact  # token byte lengths add up to every file's UTF-8 size
    ids = list(range(cache.n_files))
    split = D.PackedSplit(cache, ids, context_length=48, seed=3)
    assert split.n_windowed_files > 0  # 48 tokens is shorter than many real files
    assert split.padding_fraction < 0.15
    total_len = int(cache.lengths[ids].sum())
    rows_starting_a_file = sum(1 for r in split.rows if not split.item_cont[r[0]])
    scored = 0
    seen_rows = 0
    for batch in split.iter_epoch(0, batch_size=7):
        assert batch.inputs.shape[1] == 48 and batch.targets.shape == batch.inputs.shape
        real = batch.targets != D.IGNORE_INDEX
        assert batch.n_tokens == int(real.sum())
        # Padding is never a target.
        assert not np.any(batch.targets[real] == tok.pad_id)
        scored += batch.n_tokens
        seen_rows += batch.inputs.shape[0]
    assert seen_rows == split.n_rows
    # Every token is predicted exactly once, except the first token of a row that starts a file.
    assert scored == total_len - rows_starting_a_file
    # Row order is a pure function of (seed, epoch).
    assert np.array_equal(split.epoch_order(1), D.PackedSplit(cache, ids, 48, seed=3).epoch_order(1))
    assert not np.array_equal(split.epoch_order(1), split.epoch_order(2))


def test_bits_per_byte_counts_exactly_the_bytes_scored(small):
    data_dir, tok, root = small
    cache, files = D.load_token_cache(data_dir, tok, root / "cache-bpb", layout="file")
    split = D.PackedSplit(cache, range(cache.n_files), context_length=64, shuffle_packing=False)
    batch = next(split.iter_fixed(4))
    scored = batch.targets[batch.targets != D.IGNORE_INDEX]
    text = b"".join(bytes(tok._pieces[int(t)]) if isinstance(tok._pieces[int(t)], bytes) else b"" for t in scored)
    assert batch.n_bytes == len(text) > 0


def test_token_cache_is_reused_and_invalidated(small, monkeypatch):
    data_dir, tok, root = small
    work = root / "cache-work"
    corpus = copy_slice(data_dir, work / "proofs", 30)
    first, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert not first.from_cache and first.encoded == 30 and first.path and first.path.is_dir()
    want = [first.file_tokens(i).tolist() for i in range(first.n_files)]

    def boom(texts):
        raise AssertionError("re-tokenized although the cache was valid")

    monkeypatch.setattr(tok, "encode_batch", boom)
    again, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert again.from_cache and again.n_tokens == first.n_tokens
    assert [again.file_tokens(i).tolist() for i in range(again.n_files)] == want
    monkeypatch.undo()
    # Changing one file's content re-tokenizes that file only.
    victim = sorted(corpus.glob("*.txt"))[3]
    victim.write_text(victim.read_text() + "extra = line\n")
    changed, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert changed.encoded == 1 and changed.names == first.names
    fresh, _ = D.load_token_cache(corpus, tok, work / "fresh-cache")  # tokenized from scratch
    assert [changed.file_tokens(i).tolist() for i in range(changed.n_files)] == [
        fresh.file_tokens(i).tolist() for i in range(fresh.n_files)]
    assert changed.file_tokens(3).tolist() != want[3]
    assert len(list((work / "cache").glob("store-*"))) == 1
    # Every reader maps the store's one file read-only (DDP ranks share its pages).
    assert isinstance(again.tokens, np.memmap) and Path(again.tokens.filename).parent == again.path
    assert not again.tokens.flags.writeable


def test_renumbered_reimport_tokenizes_only_new_text(small, monkeypatch):
    """A re-import renumbers every file after a changed module: the store is keyed by text,
    so only files whose text is new are tokenized, and the result equals a fresh build."""
    data_dir, tok, root = small
    work = root / "cache-renumber"
    corpus = copy_slice(data_dir, work / "proofs", 40)
    D.load_token_cache(corpus, tok, work / "cache")
    files = sorted(corpus.glob("*.txt"))
    texts = [f.read_text() for f in files]
    for f in files:
        f.unlink()
    new_texts = texts[:10] + [texts[0] + "step = one\n", texts[1] + "step = two\n"] + texts[10:]  # a new module
    for i, text in enumerate(new_texts):
        (corpus / f"proof_{i:05d}.txt").write_text(text)
    encoded: list[int] = []
    real = tok.encode_batch
    monkeypatch.setattr(tok, "encode_batch", lambda texts: encoded.append(len(texts)) or real(texts))
    again, _ = D.load_token_cache(corpus, tok, work / "cache", layout="file")  # file layout: a second store
    assert again.encoded == 42  # a new store: all of it
    encoded.clear()
    again, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert again.encoded == 2 and again.n_files == 42
    fresh, _ = D.load_token_cache(corpus, tok, work / "fresh")
    assert [again.file_tokens(i).tolist() for i in range(42)] == [fresh.file_tokens(i).tolist() for i in range(42)]
    assert np.array_equal(again.prompt_lens, fresh.prompt_lens) and np.array_equal(again.file_bytes, fresh.file_bytes)
    assert len(list((work / "cache").glob("store-*"))) == 2  # prover and file layouts side by side


def test_token_store_survives_a_writer_killed_before_its_index(small):
    """Tokens appended without a published index are cut off by the next writer; the store
    stays what the last commit said, and what it returns equals a fresh build."""
    from tactics_core.gpt import token_store as TS

    data_dir, tok, root = small
    work = root / "cache-killed"
    corpus = copy_slice(data_dir, work / "proofs", 12)
    first, _ = D.load_token_cache(corpus, tok, work / "cache")
    store_dir = first.path
    bins = sorted(store_dir.glob("tokens.*.bin"))
    assert len(bins) == 1
    with open(bins[0], "ab") as fh:  # a killed writer's tail
        fh.write(b"\x07" * 1000)
    victim = sorted(corpus.glob("*.txt"))[0]
    victim.write_text(victim.read_text() + "extra = line\n")
    after, _ = D.load_token_cache(corpus, tok, work / "cache")
    fresh, _ = D.load_token_cache(corpus, tok, work / "fresh")
    assert after.encoded == 1
    assert [after.file_tokens(i).tolist() for i in range(12)] == [fresh.file_tokens(i).tolist() for i in range(12)]
    # A torn index (shorter data than it promises) is rebuilt, not trusted.
    with open(sorted(store_dir.glob("tokens.*.bin"))[0], "r+b") as fh:
        fh.truncate(10)
    rebuilt, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert rebuilt.encoded == 12
    assert [rebuilt.file_tokens(i).tolist() for i in range(12)] == [fresh.file_tokens(i).tolist() for i in range(12)]
    assert TS.content_digest("a") != TS.content_digest("b")


def test_token_store_compacts_when_most_of_it_is_unused(small, monkeypatch):
    from tactics_core.gpt import token_store as TS

    data_dir, tok, root = small
    work = root / "cache-compact"
    corpus = copy_slice(data_dir, work / "proofs", 40)
    monkeypatch.setattr(TS, "COMPACT_MIN_TOKENS", 1)
    full, _ = D.load_token_cache(corpus, tok, work / "cache")
    for f in sorted(corpus.glob("*.txt"))[5:]:
        f.unlink()
    small_cache, _ = D.load_token_cache(corpus, tok, work / "cache")
    assert small_cache.encoded == 0
    assert len(small_cache.tokens) == small_cache.n_tokens < full.n_tokens  # the store holds only these now
    assert [small_cache.file_tokens(i).tolist() for i in range(5)] == [full.file_tokens(i).tolist() for i in range(5)]
    assert len(list(small_cache.path.glob("tokens.*.bin"))) == 1


def test_tokenizer_without_eos_separates_files_with_masked_padding(small):
    data_dir, tok, root = small

    class NoEos:  # what a tokenizer from the original scripts looks like to the data pipeline
        def __init__(self, inner):
            self._inner = inner
            self.eos_id = None
            self.pad_id = inner.pad_id
            self.vocab_size = inner.vocab_size
            self.sha256 = "no-eos-" + inner.sha256
            self.special_tokens = {n: i for n, i in inner.special_tokens.items() if n != "<EOS>"}
            self.token_bytes = inner.token_bytes
            self.token_pieces = inner.token_pieces

        def encode_batch(self, texts):
            return self._inner.encode_batch(texts)

        def encode(self, text):
            return self._inner.encode(text)

    cache, _ = D.load_token_cache(data_dir, NoEos(tok), root / "cache-noeos", layout="file")
    assert cache.sep_id == tok.pad_id and not cache.learn_sep
    split = D.PackedSplit(cache, range(cache.n_files), context_length=64)
    for batch in split.iter_epoch(0, 8):
        real = batch.targets != D.IGNORE_INDEX
        assert not np.any(batch.targets[real] == tok.pad_id)
        assert not np.any(batch.targets[real] == tok.eos_id)


@pytest.mark.parametrize("layout", ["file", "prover"])
def test_load_dataset_reports_split_and_sample(small, layout):
    data_dir, tok, root = small
    ds = D.load_dataset(data_dir, tok, root / f"cache-ds-{layout}", context_length=64, val_fraction=0.2, seed=1, layout=layout)
    s = ds.summary()
    assert s["train_files"] + s["val_files"] == s["files"] == 120
    assert set(ds.train_files).isdisjoint(ds.val_files)
    assert 0.0 <= s["train_padding"] < 0.2
    assert s["layout"] == layout
    if ds.sample_prompt is not None and layout == "file":
        assert ds.sample_prompt.endswith("@P\n") and ds.sample_expected
    if ds.sample_prompt is not None and layout == "prover":  # the prover's prompt: no @P
        assert ds.sample_prompt == ds.sample_file.context_text() and "@P" not in ds.sample_prompt
        assert ds.sample_expected == ds.sample_file.proof[0]


def test_module_split_holds_out_whole_modules(tmp_path):
    """`split = "module"`: every module's files fall in one split (new theories in validation),
    read from the manifest beside the data folder; without one, a one-line error says what to do."""
    import json

    src = shared_corpus("acornlib-2025-11")
    data_dir = copy_slice(src, tmp_path / "proofs", 600, start=0)
    train_tokenizer(data_dir, tmp_path / "tok", vocab_size=400, kind="lines")
    tok = load_tokenizer(tmp_path / "tok" / "tokenizer.json")
    with pytest.raises(D.TacticsError, match="needs .*manifest.jsonl.*tactics import acornlib") as err:
        D.load_dataset(data_dir, tok, tmp_path / "cache", 64, val_fraction=0.3, split="module")
    assert "\n" not in str(err.value)
    shutil.copyfile(src.parent / "manifest.jsonl", tmp_path / "manifest.jsonl")
    module_of = {r["file"]: r["module"] for r in map(json.loads, (tmp_path / "manifest.jsonl").read_text().splitlines())}
    by_module = D.load_dataset(data_dir, tok, tmp_path / "cache", 64, val_fraction=0.3, split="module")
    by_theorem = D.load_dataset(data_dir, tok, tmp_path / "cache", 64, val_fraction=0.3, split="theorem")
    assert by_module.split == "module" and by_module.summary()["split"] == "module"
    train_modules = {module_of[n] for n in by_module.train_files}
    val_modules = {module_of[n] for n in by_module.val_files}
    assert train_modules and val_modules and not train_modules & val_modules
    # split by theorem, some module has files on both sides: that is what the module split prevents
    assert {module_of[n] for n in by_theorem.train_files} & {module_of[n] for n in by_theorem.val_files}
    (tmp_path / "manifest.jsonl").write_text('{"file": "proof_00000.txt", "module": "src/x.ac"}\n')
    with pytest.raises(D.TacticsError, match="599 files of .* are not in .*manifest.jsonl"):
        D.load_dataset(data_dir, tok, tmp_path / "cache", 64, val_fraction=0.3, split="module")


def test_token_store_keys_survive_the_index(tmp_path):
    """Digests are raw bytes; ones that end in NUL bytes must come back from the index whole."""
    import numpy as np

    from tactics_core.gpt import token_store as TS

    meta = {"version": 1, "tokenizer_sha256": "ab" * 32, "layout": "prover", "dtype": "uint16",
            "sep_id": 2, "learn_sep": True, "pad_id": 1}
    digests = [b"\0" * 16, b"a" + b"\0" * 15, b"b" * 16]

    def encode(files):
        return [([int(f), int(f) + 1], [0, 1], 1, 2) for f in files]

    with TS.open_store(tmp_path, meta) as store:
        store.add(["3", "5", "7"], digests, encode, np.ones(16, dtype=np.int32))
        store.mark_used(digests)
        store.commit()
    with TS.open_store(tmp_path, meta) as store:
        assert all(store.has(d) for d in digests) and store.appended == 0
        view = store.view(digests[::-1])
        tokens, _ = store.maps()
        assert [tokens[s : s + n].tolist() for s, n in zip(view.starts, view.lengths)] == [[7, 8], [5, 6], [3, 4]]
        assert view.bytes_exact
