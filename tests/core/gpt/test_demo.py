"""The generated demo corpus: deterministic, parses cleanly, and every proof step is true."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tactics_core.cli import main
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt.corpus import corpus_stats, iter_corpus, parse_proof_text
from tactics_core.gpt.demo import RING, generate, normalise, show, write_demo_corpus, _random_expr


def _value(text: str, env: dict) -> int:
    """Evaluate a demo expression: Acorn's `+ * -` and Python's agree on precedence."""
    py = text.replace("R.0", "0").replace("R.1", "1")
    return eval(py, {"__builtins__": {}}, env)  # noqa: S307 - text made by our own generator


def _sides(line: str) -> tuple[str, str]:
    left, right = line.strip().split(" = ")
    return left, right


def test_same_seed_same_files_other_seed_other_files():
    a = generate(400, seed=0)
    assert a == generate(400, seed=0)
    b = generate(400, seed=1)
    assert a != b
    assert len(a) == len(b) == 400
    assert [name for name, _ in a] == [f"proof_{i:05d}.txt" for i in range(400)]
    assert generate(50, seed=0) == a[:50]  # a prefix: asking for more files adds, never changes


def test_written_corpus_is_byte_identical_per_seed(tmp_path):
    one = write_demo_corpus(tmp_path / "one", files=150, seed=7)
    two = write_demo_corpus(tmp_path / "two", files=150, seed=7)
    other = write_demo_corpus(tmp_path / "three", files=150, seed=8)
    assert one.files == two.files == 150
    read = lambda d: {p.name: p.read_bytes() for p in sorted(Path(d).iterdir())}  # noqa: E731
    assert read(one.data_dir) == read(two.data_dir)
    assert read(one.data_dir) != read(other.data_dir)
    assert one.bytes == sum(len(b) for b in read(one.data_dir).values())
    assert {name: text.encode() for name, text in generate(150, seed=7)} == read(one.data_dir)


def test_default_demo_corpus_parses_cleanly():
    """The default `tactics demo` corpus (3,000 files, seed 0), parsed in memory."""
    files = [parse_proof_text(text, name) for name, text in generate(3000, seed=0)]
    keys = {pf.theorem_key() for pf in files}
    assert 500 < len(keys) < 3000  # several goal files per theorem for the longer proofs
    assert all(pf.proof is not None for pf in files)
    assert 0.2 < sum(bool(pf.theorem) for pf in files) / 3000 < 0.7
    assert 0.05 < sum(bool(pf.hypothesis) for pf in files) / 3000 < 0.4


def test_written_demo_corpus_stats_look_like_a_corpus(tmp_path):
    made = write_demo_corpus(tmp_path / "proofs", files=800, seed=0)
    stats = corpus_stats(made.data_dir).to_dict()
    assert stats["skipped"] == []
    assert stats["files"] == 800
    assert stats["theorems"] == made.theorems  # theorem_key groups exactly the generator's theorems
    sec = stats["sections"]
    assert sec["G"] == sec["C"] == sec["P"] == 1.0
    assert 0.2 < sec["T"] < 0.7 and 0.05 < sec["H"] < 0.4
    assert stats["proof_lines"]["mean"] > 1.5 and stats["proof_lines"]["max"] <= 15
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left


def _assert_chain(lines, start: str, end: str, name: str) -> None:
    """Each proof line starts where the previous one ended, from `start` to `end`."""
    assert lines, name
    assert _sides(lines[0])[0] == start, name
    for prev, nxt in zip(lines, lines[1:]):
        assert _sides(prev)[1] == _sides(nxt)[0], name
    assert _sides(lines[-1])[1] == end, name


def test_every_proof_line_is_a_true_single_step_chain():
    rng = random.Random(0)
    files = [parse_proof_text(text, name) for name, text in generate(600, seed=3)]
    groups: dict[str, list] = {}
    for pf in files:
        groups.setdefault(pf.theorem_key(), []).append(pf)
    claims = 0
    for pf in files:
        for _ in range(3):  # every line is a true identity (given the hypothesis)
            env = {n: rng.randint(-9, 9) for n in "abc"}
            if pf.hypothesis:
                env["c"] = _value(pf.hypothesis[0].split(" = ", 1)[1], env)
            for line in pf.proof:
                left, right = _sides(line)
                assert _value(left, env) == _value(right, env), (pf.name, line)
        goal_line = pf.goal[1] if len(pf.goal) == 3 else pf.goal[0]
        if pf.hypothesis:
            assert goal_line.strip().startswith(pf.hypothesis[0] + " implies ")
            goal_line = goal_line.split(" implies ")[1]
        left, right = _sides(goal_line)
        assert pf.counterfactual == (f"{left} != {right}",)
        if pf.theorem:  # a claim inside a `by` block: one stretch of the rewrite chain
            claims += 1
            assert pf.theorem[-1].strip() == "} by {" or " = " in pf.theorem[-1]
            _assert_chain(pf.proof, left, right, pf.name)
        elif pf.hypothesis:  # substitute the hypothesis, then rewrite
            _assert_chain(pf.proof, left, right, pf.name)
        elif any(other.theorem for other in groups[pf.theorem_key()]):
            # proved from its claims by transitivity: `lhs = (end of a claim)`
            ends = {_sides(o.goal[0])[1] for o in groups[pf.theorem_key()] if o.theorem}
            assert all(_sides(line)[0] == left and _sides(line)[1] in ends for line in pf.proof)
        else:
            _assert_chain(pf.proof, left, right, pf.name)
    assert claims > 100


def test_normalise_preserves_value_and_reaches_a_normal_form():
    rng = random.Random(1)
    for _ in range(300):
        expr = _random_expr(rng, RING, 3, "abc")
        chain = normalise(expr, RING, limit=60)
        if chain is None:
            continue
        env = {n: rng.randint(-5, 5) for n in "abc"}
        start = _value(show(expr, RING), env)
        for e, rule in chain:
            assert _value(show(e, RING), env) == start, rule
        final = chain[-1][0] if chain else expr
        assert normalise(final, RING) == []


def test_refuses_non_empty_folder_without_force(tmp_path, capsys):
    data = tmp_path / "proofs"
    data.mkdir()
    (data / "mine.txt").write_text("my own proof file")
    assert main(["demo", "--data-dir", str(data), "--files", "20"]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err and err.count("\n") == 1
    assert (data / "mine.txt").read_text() == "my own proof file"
    assert main(["demo", "--data-dir", str(data), "--files", "20", "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 20 and out["replaced"] is True and out["seed"] == 0
    assert sorted(p.name for p in data.iterdir()) == [f"proof_{i:05d}.txt" for i in range(20)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proofs"]


def test_force_refuses_folders_that_are_not_proof_folders(tmp_path):
    data = tmp_path / "proofs"
    (data / "sub").mkdir(parents=True)
    with pytest.raises(TacticsError, match="has subfolders"):
        write_demo_corpus(data, files=5, force=True)
    with pytest.raises(TacticsError, match="between 1 and"):
        write_demo_corpus(tmp_path / "x", files=0)


def test_interrupted_run_leaves_no_half_corpus(tmp_path):
    token = CancelToken()

    def stop_midway(done, total, message):
        if done >= 256:
            token.cancel()

    data = tmp_path / "proofs"
    with pytest.raises(Cancelled):
        write_demo_corpus(data, files=1000, progress=stop_midway, cancel=token)
    assert list(tmp_path.iterdir()) == []
    # an existing corpus survives an interrupted --force run untouched
    data.mkdir()
    (data / "proof_1.txt").write_text("@G\nx\n@C\ny\n")
    token = CancelToken()
    with pytest.raises(Cancelled):
        write_demo_corpus(data, files=1000, force=True, progress=stop_midway, cancel=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proofs"]
    assert [p.name for p in data.iterdir()] == ["proof_1.txt"]


def test_cli_demo_then_stats(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--files", "120", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "made data/proofs: 120 proof files" in out and "seed 2" in out
    assert len(list(iter_corpus(tmp_path / "data" / "proofs"))) == 120
    assert main(["corpus", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 120
