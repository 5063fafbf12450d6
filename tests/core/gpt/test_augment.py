"""Renamed-variable copies of training files: what is renamed, what is kept, and how the
training split takes them (validation untouched, streams as the prover would see them)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tactics_core.gpt import data as D
from tactics_core.gpt.augment import bound_names, rename_variables, variants
from tactics_core.gpt.corpus import iter_corpus, parse_proof_text
from tactics_core.gpt.prover_replica import encode_stream
from tactics_core.gpt.tokenizer import load_tokenizer, train_tokenizer

from conftest import copy_slice, shared_corpus

TEXT = """@T
theorem mul_spans[F: Field](a: F, b: F, p: Point) { a.x = b } by {
    // a is nonzero here
    let c = a * b
@G
    c * p.a = F.1
@C
c * p.a != F.1
@P
a * b = c
exists(k: F) { k * a = F.1 }
"""


def test_bound_names_are_parameters_lets_and_type_parameters():
    pf = parse_proof_text(TEXT, "proof_00000.txt")
    assert bound_names(pf) == ({"a", "b", "p", "c", "k"}, {"F"})


def names_of(pf) -> list[str]:
    """The names of a file's code in order: comments cut, a field (`.x`) kept with its dot."""
    out = []
    for section in (pf.theorem, pf.goal, pf.hypothesis, pf.counterfactual, pf.proof or ()):
        for line in section:
            code = line.split("//")[0]
            out += re.findall(r"\.?[A-Za-z_][A-Za-z0-9_]*", code)
    return out


def test_renaming_is_consistent_and_leaves_fields_comments_and_globals_alone():
    pf = parse_proof_text(TEXT, "proof_00000.txt")
    new = rename_variables(pf, random.Random(7))
    pairs = list(zip(names_of(pf), names_of(new)))
    assert len(names_of(pf)) == len(names_of(new))
    mapping = {}
    for o, n in pairs:
        assert mapping.setdefault(o, n) == n  # the same name becomes the same name everywhere
    renamed = {o: n for o, n in mapping.items() if o != n}
    assert set(renamed) <= {"a", "b", "p", "c", "k", "F"} and len(set(renamed.values())) == len(renamed)
    assert all(len(n) == 1 for n in renamed.values())
    assert mapping["mul_spans"] == "mul_spans" and mapping["Field"] == "Field" and mapping["Point"] == "Point"
    assert mapping[".x"] == ".x" and mapping[".a"] == ".a"  # fields are not variables
    assert "// a is nonzero here" in new.text()  # comments keep their words
    a, b, c = (mapping[x] for x in "abc")
    assert new.proof[0] == f"{a} * {b} = {c}"  # the proof lines follow the prompt's renaming


def test_renamed_names_never_capture_another_word_and_a_file_binding_nothing_is_unchanged():
    pf = parse_proof_text("@G\nfoo(x) = bar\n@C\nfoo(x) != bar\n@P\nbaz\n", "proof_00001.txt")
    assert rename_variables(pf, random.Random(1)) == pf
    src = shared_corpus("acornlib-2025-11")
    files = [f for f in iter_corpus(src) if f.name < "proof_00400.txt"]
    changed = 0
    for pf in files:
        (v,) = variants(pf, 1, seed=3)
        assert variants(pf, 1, seed=3) == [v]  # a pure function of (file, variant, seed)
        old, new = names_of(pf), names_of(v)
        assert len(old) == len(new)
        mapping: dict[str, str] = {}
        for o, n in zip(old, new):
            assert mapping.setdefault(o, n) == n, (pf.name, o)  # consistent
        renamed = {o: n for o, n in mapping.items() if o != n}
        assert len(set(renamed.values())) == len(renamed)  # a bijection
        assert not set(renamed.values()) & (set(old) - set(renamed))  # no capture of a kept word
        assert v.proof == pf.proof or pf.proof is None or len(v.proof) == len(pf.proof)
        changed += bool(renamed)
    assert changed > len(files) // 2


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    data_dir = copy_slice(shared_corpus("acornlib-2025-11"), root / "proofs", 120, start=600)
    train_tokenizer(data_dir, root / "tok", vocab_size=512, kind="lines")
    return data_dir, load_tokenizer(root / "tok" / "tokenizer.json"), root


def test_rename_variants_grow_the_training_split_only(small):
    data_dir, tok, root = small
    plain = D.load_dataset(data_dir, tok, root / "cache", 128, seed=5)
    aug = D.load_dataset(data_dir, tok, root / "cache", 128, seed=5, rename_variants=2)
    assert aug.val_files == plain.val_files and aug.train_files == plain.train_files
    assert aug.val.n_rows == plain.val.n_rows
    assert [b.targets.tolist() for b in aug.val.iter_fixed(8)] == [b.targets.tolist() for b in plain.val.iter_fixed(8)]
    assert aug.train.n_rows == 3 * plain.train.n_rows
    assert aug.summary()["rename_variants"] == 2
    # Each copy is exactly the prover stream of the renamed file.
    files = {f.name: f for f in iter_corpus(data_dir)}
    cache = aug.cache
    n = plain.cache.n_files
    for i in (n, n + 1, len(cache.names) - 1):
        name, v = cache.names[i].split("~")
        want = encode_stream(tok, variants(files[name], 2, 5)[int(v) - 1])
        assert cache.file_tokens(i).tolist() == want.ids
        assert int(cache.prompt_lens[i]) == want.prompt_len
        assert not D.is_validation_key(cache.keys[i], 0.1)
    assert Path(root / "cache").is_dir()
