"""The data layouts as objects: each one's encoding is what training consumes, and its
prompt is what its model learned to continue; names are looked up in one place."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import slice_with_tokenizer
from tactics_core.common.errors import TacticsError
from tactics_core.gpt import data as D
from tactics_core.gpt.complete import export_layout, greedy_next_line
from tactics_core.gpt.corpus import iter_corpus
from tactics_core.gpt.layouts import DEFAULT_LAYOUT, FILE, LAYOUTS, PROVER, layout_named
from tactics_core.gpt.prover_replica import ROLE_FED, ROLE_PROOF, prompt_budget
from tactics_core.gpt.tokenizer import load_tokenizer

CTX = 160


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """40 real files, their `lines` tokenizer, and the files parsed."""
    root = tmp_path_factory.mktemp("layouts")
    data_dir, tok_path = slice_with_tokenizer(root)
    return data_dir, load_tokenizer(tok_path), list(iter_corpus(data_dir)), root


def test_names_are_looked_up_in_one_place():
    assert LAYOUTS == ("prover", "file") and DEFAULT_LAYOUT == "prover"
    assert [layout_named(name) for name in LAYOUTS] == [PROVER, FILE]
    assert all(layout_named(name).name == name for name in LAYOUTS)
    for bad in ("files", "Prover", "", None):
        with pytest.raises(TacticsError) as err:
            layout_named(bad)
        message = str(err.value)
        assert "\n" not in message and repr(bad) in message and "prover, file" in message
    # Records from before layouts were recorded name the whole-file layout.
    assert export_layout({}) is FILE and export_layout({"layout": "prover"}) is PROVER


def test_an_unknown_layout_fails_before_any_tokenizing(small, monkeypatch):
    data_dir, tok, _, root = small
    monkeypatch.setattr(tok, "encode_batch", lambda texts: pytest.fail("tokenized for an unknown layout"))
    with pytest.raises(TacticsError, match="unknown data layout 'stream'"):
        D.load_dataset(data_dir, tok, root / "cache-bad", CTX, layout="stream")


@pytest.mark.parametrize("layout", [PROVER, FILE], ids=lambda layout: layout.name)
def test_the_encoding_is_what_the_cache_and_the_batches_hold(small, layout):
    data_dir, tok, files, root = small
    cache, cached_files = D.load_token_cache(data_dir, tok, root / f"cache-{layout.name}", layout=layout.name)
    assert [f.name for f in cached_files] == [f.name for f in files]
    encoded = list(layout.encode_files(tok, files, cache.sep_id))
    for i, (ids, roles, n_prompt, _) in enumerate(encoded):
        assert list(cache.file_tokens(i)) == ids and len(roles) == len(ids)
        assert int(cache.prompt_lens[i]) == n_prompt
        assert (ids[-1] == cache.sep_id) == layout.separator  # only the file layout ends a file with <EOS>
    if layout.prover_stream:  # one stream per row, its prompt cut from the front as the prover cuts it
        split = D.ProverSplit(cache, range(len(files)), CTX, batch_size=1, shuffle=False)

        def row_of(r):
            ids, roles, n_prompt, _ = encoded[int(split.file_indices[r])]
            cut = max(0, n_prompt - prompt_budget(CTX))
            return ids[cut:][: CTX + 1], roles[cut:][: CTX + 1]
    else:  # whole files packed into rows (the context is long enough for no file to be cut)
        ctx = max(len(ids) for ids, *_ in encoded) + 8
        split = D.PackedSplit(cache, range(len(files)), ctx, shuffle_packing=False)
        assert split.n_windowed_files == 0

        def row_of(r):
            items = [encoded[int(split.file_indices[i])] for i in split.rows[r]]
            return sum((e[0] for e in items), []), sum((e[1] for e in items), [])
    for r in range(split.n_rows):
        tokens, roles = row_of(r)
        batch = split.batch([r])
        n = len(tokens)
        assert list(batch.inputs[0, : n - 1]) == tokens[:-1]
        assert np.all(batch.inputs[0, n:] == tok.pad_id)
        want = [t if role != ROLE_FED else D.IGNORE_INDEX for t, role in zip(tokens[1:], roles[1:])]
        assert list(batch.targets[0, : n - 1]) == want and np.all(batch.targets[0, n - 1 :] == D.IGNORE_INDEX)
        assert list(batch.proof[0, : n - 1]) == [role == ROLE_PROOF for role in roles[1:]]


@pytest.mark.parametrize("layout", [PROVER, FILE], ids=lambda layout: layout.name)
def test_the_prompt_is_what_the_model_learned_to_continue(small, layout):
    """With the default (`lines`) tokenizer a layout's prompt for a goal and its first k proof
    lines is exactly the start of the file's training tokens, followed there by line k + 1."""
    _, tok, files, _ = small
    checked = 0
    for f in files:
        ids, *_ = next(layout.encode_files(tok, [f], tok.eos_id))
        proof = list(f.proof or ())
        for k in range(len(proof)):
            prompt = layout.prompt(tok, f, 4096, proof[:k])
            assert ids[: len(prompt.ids)] == prompt.ids and not prompt.truncated
            line = tok.encode(proof[k])
            assert ids[len(prompt.ids) : len(prompt.ids) + len(line)] == line
            checked += 1
        # Proof-file text asks the same as the ProofFile with the same lines so far.
        text = f.context_text() + "@P\n" + "".join(x + "\n" for x in proof[:1])
        assert layout.prompt(tok, text, 4096).ids == layout.prompt(tok, f, 4096, proof[:1]).ids
    assert checked > 50


def test_load_dataset_takes_the_split_and_the_live_sample_from_the_layout(small):
    import torch

    from tactics_core.gpt.model import GPT, GPTConfig

    data_dir, tok, files, root = small
    ctx = 512  # the sample is a goal whose prompt takes at most half the context
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, context_length=ctx, d_model=32, n_layers=1, n_heads=2, dropout=0.0))
    for layout in (PROVER, FILE):
        ds = D.load_dataset(data_dir, tok, root / f"cache-ds-{layout.name}", ctx, val_fraction=0.3, layout=layout.name)
        assert isinstance(ds.train, D.ProverSplit if layout.prover_stream else D.PackedSplit)
        assert ds.sample_file is not None
        pf = ds.sample_file  # the prover's prompt has no @P; the file layout's is the file up to @P
        assert ds.sample_prompt == {PROVER: pf.context_text(), FILE: pf.prompt()}[layout]
        assert ds.sample_prompt == layout.prompt(tok, pf, ctx).text
        # The trainer's live sample asks the goal file in the layout (both layouts take a ProofFile).
        line = greedy_next_line(model, tok, ds.sample_file, max_tokens=8, layout=layout)
        assert isinstance(line, str) and "\n" not in line
