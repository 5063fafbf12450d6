"""The second split of the real-prover bench: new theorems of seen subjects
(tactics_core/acorn/goal_sample.py), judged with the stand-in acorn (helpers_acorn).

The selection is tested on real data: every file of nine modules of the shared
corpus acornlib-2025-11 with its manifest rows (the provenance `tactics import
acornlib` writes), and on a corpus imported from the acornlib fixture. The
per-split figures are computed from per-goal results of the stand-in acorn.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conftest import CORPORA, SHARED
from helpers_acorn import PLAN, fake_export, make_fake, make_library
from tactics_core.acorn import generative_judge as acorn
from tactics_core.acorn.goal_sample import GoalLine, GoalSample, model_split, seen_subject_goals
from tactics_core.acorn.types import module_name
from tactics_core.cli import main as cli_main
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.corpus import parse_proof_text
from tactics_core.gpt.data import is_validation_key

# Nine modules of acornlib-2025-11 (286 files): 8 of them hold validation goal lines, one none.
SLICE_MODULES = ("src/add_group.ac", "src/group.ac", "src/ring.ac", "src/ordered_group.ac", "src/field.ac",
                 "src/nat/nat_monoid.ac", "src/order.ac", "src/add_ordered_group.ac", "src/complex.ac")


def _slice(root: Path, modules=SLICE_MODULES, manifest: bool = True) -> Path:
    """The files of `modules` of the shared corpus in root/data/proofs, their manifest rows beside it."""
    corpus = CORPORA / "acornlib-2025-11"
    if not (corpus / "proofs").is_dir() or not (corpus / "manifest.jsonl").is_file():
        pytest.skip(f"shared corpus 'acornlib-2025-11' with its manifest not found at {corpus} (only in CI / the dev workplace)")
    data = root / "data" / "proofs"
    data.mkdir(parents=True)
    rows = [row for row in map(json.loads, (corpus / "manifest.jsonl").read_text().splitlines()) if row["module"] in modules]
    for row in rows:
        shutil.copyfile(corpus / "proofs" / row["file"], data / row["file"])
    if manifest:
        (data.parent / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


@pytest.fixture(scope="module")
def sliced(tmp_path_factory) -> Path:
    return _slice(tmp_path_factory.mktemp("seen"))


def _truth(data: Path, val_fraction: float = 0.1):
    """Independently of the module: per (module, line), whether a training file's goal starts there,
    and each module's training goal names."""
    rows = {r["file"]: r for r in map(json.loads, (data.parent / "manifest.jsonl").read_text().splitlines())}
    training_lines, training_names, validation_files = set(), {}, set()
    for path in sorted(data.glob("proof_*.txt")):
        row = rows[path.name]
        module = module_name(row["module"])
        if is_validation_key(parse_proof_text(path.read_text(), path.name).theorem_key(), val_fraction):
            validation_files.add(path.name)
        else:
            training_lines.add((module, row["src_line"]))
            training_names.setdefault(module, set()).add(row["goal"])
    return rows, training_lines, training_names, validation_files


def test_the_sample_is_seeded_stable_and_sized_as_asked(sliced):
    one = seen_subject_goals(sliced, 20, seed=0)
    assert one.lines == seen_subject_goals(sliced, 20, seed=0).lines  # stable
    assert len(one.lines) == 20 and one.size == 20
    assert one.lines == sorted(one.lines, key=lambda g: (g.module, g.line))
    other = seen_subject_goals(sliced, 20, seed=1)
    assert other.lines != one.lines  # the seed draws another sample
    every = seen_subject_goals(sliced, 10_000, seed=0)
    assert len(every.lines) == every.candidate_lines < 10_000  # more than there are: all of them
    assert set(one.lines) <= set(every.lines) and set(other.lines) <= set(every.lines)
    # a larger sample of the same seed keeps the smaller one's modules' first picks
    assert {g.module for g in one.lines} <= {g.module for g in seen_subject_goals(sliced, 30, seed=0).lines}
    # figures: what the summary and the JSON say
    assert one.validation_files > 0 and one.training_files > one.validation_files
    assert one.files == one.training_files + one.validation_files == len(list(sliced.glob("proof_*.txt")))
    assert "new theorems of seen subjects: 20 goal lines of 8 modules (seed 0)" in one.summary()
    d = one.to_dict()
    assert d["split_name"] == "new theorems of seen subjects" and len(d["lines"]) == 20 and d["modules"] == one.modules


def test_the_sample_spreads_over_the_modules(sliced):
    every = seen_subject_goals(sliced, 10_000)
    assert every.candidate_modules == 8  # add_ordered_group has no validation goal line
    sample = seen_subject_goals(sliced, 12)
    counts = Counter(g.module for g in sample.lines)
    assert len(counts) == 8  # 12 lines over all 8 modules, not the largest module's
    assert max(counts.values()) - min(counts.values()) <= 1
    assert len({g.module for g in seen_subject_goals(sliced, 3).lines}) == 3  # a small one: one line per module


def test_never_a_goal_of_a_training_file(sliced):
    rows, training_lines, training_names, validation_files = _truth(sliced)
    assert training_lines  # the slice holds both splits
    for seed in range(3):
        sample = seen_subject_goals(sliced, 10_000, seed=seed)
        for g in sample.lines:
            assert (g.module, g.line) not in training_lines
            assert not set(g.goals) & training_names[g.module]
            assert set(g.files) <= validation_files
            assert {module_name(rows[f]["module"]) for f in g.files} == {g.module}
            assert {rows[f]["src_line"] for f in g.files} == {g.line}
            assert g.module in training_names  # a seen subject: the module holds training files
    # every validation file placed for sure on a line of its own is a candidate (nothing else is lost)
    every = seen_subject_goals(sliced, 10_000)
    placed = {f for g in every.lines for f in g.files}
    assert len(placed) + every.unsure_files + every.unseen_files <= every.validation_files
    assert every.shared_lines > 0  # e.g. a claim `p(0)` that a training theorem of the module also has


def test_the_model_split_decides_validation(sliced, tmp_path):
    wide = seen_subject_goals(sliced, 10_000, val_fraction=0.3)
    assert wide.validation_files > seen_subject_goals(sliced, 10_000).validation_files
    export = tmp_path / "export"
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"val_fraction": 0.3, "split": "theorem"}))
    assert model_split(export) == (0.3, "theorem")


def _error(**kwargs) -> str:
    with pytest.raises(TacticsError) as info:
        seen_subject_goals(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_errors_one_line_each(sliced, tmp_path):
    bare = _slice(tmp_path / "bare", SLICE_MODULES[:2], manifest=False)
    assert "no manifest.jsonl beside it" in _error(data_dir=bare)
    (bare.parent / "manifest.jsonl").write_text('{"file": "proof_00000.txt", "module": "src/add_group.ac"}\n')
    assert "no provenance" in _error(data_dir=bare)
    assert "no validation theorem" in _error(data_dir=sliced, val_fraction=0.0)
    assert "split by module" in _error(data_dir=sliced, split="module")
    assert "at least 1 goal line" in _error(data_dir=sliced, size=0)
    assert "not found" in _error(data_dir=tmp_path / "nowhere")
    other = _slice(tmp_path / "other", SLICE_MODULES[:2])
    shutil.copyfile(next(sliced.glob("proof_*.txt")), other / "proof_99999.txt")
    assert "not in" in _error(data_dir=other)


def test_a_corpus_imported_from_the_acornlib_fixture(tmp_path):
    from tactics_core.acorn.library import import_acornlib

    src = SHARED / "acornlib-fixtures" / "acornlib-2025-11"
    if not src.is_dir():
        pytest.skip(f"acornlib fixture 'acornlib-2025-11' not found under {SHARED} (only in the dev workplace)")
    data = tmp_path / "data" / "proofs"
    import_acornlib(src, data, include=["src/nat/*", "src/ring.ac", "src/group.ac"])
    sample = seen_subject_goals(data, 15, seed=4)
    assert len(sample.lines) == 15 and len(sample.modules) >= 5
    assert all(g.module.startswith("nat.") or g.module in ("ring", "group") for g in sample.lines)
    _, training_lines, _, _ = _truth(data)
    assert not {(g.module, g.line) for g in sample.lines} & training_lines


# ------------------------------------------------------------------ judged by the stand-in acorn

# nat.lattice's goals in the recorded listing start on lines 12, 16, 20 (two), 28 (four)
LINE_28_GOAL = "forall(x0: Nat) { x0 * Nat.0 = Nat.0 }"
SPLIT_PLAN = {
    "generative": {"12": ("saturation_proved", 0), "16": ("generative_crashed", 101), "*": ("generative_timeout", 1)},
    "saturation": {"12": ("saturation_constraints", 1), "*": ("saturation_proved", 0)},
}


def _hand_sample(lines=(12, 13, 16, 20, 28)) -> GoalSample:
    sample = GoalSample("data/proofs", 0, len(lines), 0.1, "theorem")
    sample.lines = [GoalLine("nat.lattice", n, (f"proof_{n}.txt",), (f"goal {n}",)) for n in lines]
    sample.training_names = {"nat.lattice": frozenset({LINE_28_GOAL})}
    return sample


def test_the_judge_runs_only_the_sampled_lines_and_the_split_figures(tmp_path, monkeypatch):
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ACORN_LOG", str(calls))
    setup = acorn.resolve_setup(make_fake(tmp_path, SPLIT_PLAN), make_library(tmp_path))
    sample = _hand_sample()
    model, saturation = acorn.prove_modules(setup, sample.modules, fake_export(tmp_path), baseline=True,
                                            choose=sample.choose)
    # 13: acorn lists no goal there; 28: acorn lists a goal a training file names, so the whole line is left out
    assert sample.unlisted == ["nat.lattice:13 (acorn lists no goal there)",
                               "nat.lattice:28 (acorn lists a goal of a training file there)"]
    assert [g.line for g in model.all_goals()] == [12, 16, 20, 20] == [g.line for g in saturation.all_goals()]
    runs = [r.split()[3] for r in calls.read_text().splitlines() if "reprove" in r and "--lib" in r]
    assert sorted(runs) == ["nat.lattice:12"] * 2 + ["nat.lattice:16"] * 2 + ["nat.lattice:20"] * 2
    f = acorn.split_figures(model, saturation)
    assert (f["attempted"], f["proved"], f["own_lines"], f["no_line"], f["crashed"]) == (4, 1, 1, 0, 1)
    assert f["median_proof_seconds"] is not None
    # line 12: the model's proof, saturation's `constraints`; 16 and 20's first goal: saturation's proofs
    assert (f["beyond_saturation"], f["beyond_saturation_own_lines"]) == (1, 1)
    assert f["beyond_saturation_goals"][0].startswith("nat.lattice:12 ")
    assert (f["saturation_proved"], f["saturation_attempted"]) == (2, 4)
    assert acorn.split_figures(model)["beyond_saturation"] is None  # no saturation run: no comparison
    line = acorn.figures_line(f)
    assert "proved 1/4 (1 by the model's own lines, 0 with no line), 1 acorn crashes" in line
    assert "proved by the model, not by saturation: 1 (1 by own lines), saturation alone 2/4" in line


def test_figures_from_recorded_results_count_no_line_proofs_apart():
    def goal(line, outcome, proof=None, seconds=0.5):
        return acorn.GoalResult("m", f"g{line}", line, outcome, seconds, proof)

    model = acorn.ProverResult("model", [acorn.ModuleResult("m", [
        goal(1, "proved", []), goal(2, "proved", ["a = b"], 1.5), goal(3, "crashed"), goal(4, "timeout"),
        goal(5, "proved", ["c"], 0.1)])])
    saturation = acorn.ProverResult("saturation", [acorn.ModuleResult("m", [
        goal(1, "constraints"), goal(2, "proved", ["x"]), goal(3, "proved", ["y"]), goal(4, "proved", ["z"]),
        goal(5, "timeout"), goal(6, "proved", ["w"])])])  # goal 6 was not judged for the model: not counted
    f = acorn.split_figures(model, saturation)
    assert (f["proved"], f["own_lines"], f["no_line"], f["crashed"], f["median_proof_seconds"]) == (3, 2, 1, 1, 0.5)
    assert (f["beyond_saturation"], f["beyond_saturation_own_lines"]) == (2, 1)  # goals 1 (no line) and 5
    assert f["own_line_goals"] == ["m:2 g2: a = b", "m:5 g5: c"]  # which goals, with the lines acorn accepted
    assert (f["saturation_proved"], f["saturation_attempted"]) == (3, 5)


def _hand_corpus(root: Path) -> Path:
    """A corpus whose manifest places goals on nat.lattice's listed lines: validation files on 12, 13,
    20 and 28, training files on 16 and 5 (the module is seen)."""
    data = root / "data" / "proofs"
    data.mkdir(parents=True)
    keys = {True: [], False: []}
    i = 0
    while len(keys[True]) < 4 or len(keys[False]) < 2:
        name = f"theorem seen_{i}"
        keys[is_validation_key(name, 0.1)].append(name)
        i += 1
    placed = [(12, keys[True][0]), (13, keys[True][1]), (20, keys[True][2]), (28, keys[True][3]),
              (16, keys[False][0]), (5, keys[False][1])]
    rows = []
    for k, (line, key) in enumerate(placed):
        name = f"proof_{k:05d}.txt"
        (data / name).write_text(f"@G\n{key}\n@C\nnot goal_{line}\n@P\nx = x\n")
        rows.append({"cert": "build/nat/lattice.jsonl", "file": name, "goal": f"goal_{line}", "line": k + 1,
                     "method": "exact", "module": "src/nat/lattice.ac", "src_line": line})
    (data.parent / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_cli_prove_seen_subjects(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ACORN_LOG", str(calls))
    monkeypatch.setenv(acorn.ENV_BINARY, str(make_fake(tmp_path, PLAN)))
    monkeypatch.setenv(acorn.ENV_ACORNLIB, str(make_library(tmp_path)))
    export = fake_export(tmp_path)  # config.json "{}": val_fraction 0.1, split by theorem
    data = _hand_corpus(tmp_path)
    assert cli_main(["prove", str(export), "--seen-subjects", "10", "--data-dir", str(data), "--baseline"]) == 0
    out = capsys.readouterr().out
    assert "new theorems of seen subjects: 4 goal lines of 1 modules (seed 0)" in out
    assert "proved by the model, not by saturation: 0 (0 by the model's own lines); saturation alone proved" in out
    assert "1 sampled goal lines left out: nat.lattice:13 (acorn lists no goal there)" in out
    runs = sorted({r.split()[3] for r in calls.read_text().splitlines() if "reprove" in r and "--lib" in r})
    assert runs == ["nat.lattice:12", "nat.lattice:20", "nat.lattice:28"]  # never 16 or 5: training goals
    assert cli_main(["prove", str(export), "--seen-subjects", "2", "--data-dir", str(data), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["sample"]["lines"]) == 2 and d["figures"]["attempted"] >= 1
    for argv, words in (
        (["--seen-subjects", "2", "--data-dir", str(data), "--module", "nat.lattice"], "not both"),
        (["--data-dir", str(data)], "goes with --seen-subjects"),
        (["--seen-subjects", "2", "--data-dir", str(tmp_path / "none")], "not found"),
    ):
        assert cli_main(["prove", str(export), *argv]) == 2
        assert words in capsys.readouterr().err


def test_a_sample_of_another_acornlib_is_refused(tmp_path):
    setup = acorn.resolve_setup(make_fake(tmp_path, PLAN), make_library(tmp_path))
    sample = _hand_sample()
    sample.lines.append(GoalLine("real.real_seq", 3, ("proof_x.txt",), ("g",)))
    with pytest.raises(TacticsError, match="imported from another acornlib"):
        acorn.prove(fake_export(tmp_path), setup, sample=sample)


def test_the_bench_judges_and_prints_both_splits(tmp_path, monkeypatch, capsys):
    """bench/real_prover.py's split code (the sample, one run per prover and split, the figures
    per split) with the stand-in acorn; the bench itself needs the real one and trained models."""
    import sys

    from conftest import REPO

    monkeypatch.syspath_prepend(str(REPO / "bench"))
    sys.modules.pop("real_prover", None)
    import real_prover

    setup = acorn.resolve_setup(make_fake(tmp_path, SPLIT_PLAN), make_library(tmp_path))
    export = fake_export(tmp_path)
    sample = real_prover.seen_sample(_hand_corpus(tmp_path), {"ours": export}, 10, 0)
    results = {
        "heldout": {"ours": real_prover.judge(setup, export, ["nat.lattice"], 1, "ours model"),
                    "saturation": real_prover.judge(setup, None, ["nat.lattice"], 1, "saturation")},
        "seen": {"ours": real_prover.judge(setup, export, sample.modules, 1, "ours model", choose=sample.choose),
                 "saturation": real_prover.judge(setup, None, sample.modules, 1, "saturation", choose=sample.choose)},
    }
    labels = {"ours": "cpu preset"}
    table = real_prover.split_table(results, labels)
    assert set(table) == {"heldout", "seen"} and set(table["seen"]) == {"ours"}
    held, seen = table["heldout"]["ours"], table["seen"]["ours"]
    assert (held["attempted"], held["proved"], held["crashed"], held["saturation_proved"]) == (8, 1, 1, 3)
    # seen: lines 12, 20 (two goals) and 28 (four); 13 is no goal in acorn's listing
    assert (seen["attempted"], seen["proved"], seen["own_lines"], seen["beyond_saturation"]) == (7, 1, 1, 1)
    assert (seen["saturation_proved"], seen["saturation_attempted"]) == (2, 7)
    capsys.readouterr()
    real_prover.print_splits(table, labels, {"heldout": "nat.lattice", "seen": "4 goal lines of 1 modules"})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  held-out subject (src/list/): nat.lattice")
    assert out[2] == "  new theorems of seen subjects: 4 goal lines of 1 modules"
    assert out[3].split()[:3] == ["cpu", "preset", "proved"] and "saturation alone 2/7" in out[3]
