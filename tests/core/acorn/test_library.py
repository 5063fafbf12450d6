"""`tactics import acornlib`: reproduces the published corpora, survives hostile trees, is atomic."""

from __future__ import annotations

import json
import re
import os
from pathlib import Path

import pytest

from conftest import CORPORA, SHARED, TESTS
from tactics_core.acorn.library import import_acornlib
from tactics_core.acorn.library.claims import goal_key, hypothesis_and_counterfactual, negate
from tactics_core.cli import main
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt.corpus import corpus_stats

FIXTURES = SHARED / "acornlib-fixtures"
AIM = 0.98  # the aim: at least 98% of files byte-identical, names included


def _fixture(tree: str, expected: Path) -> tuple[Path, Path]:
    src = FIXTURES / tree
    if not src.is_dir() or not (expected / "proofs").is_dir():
        pytest.skip(f"acornlib fixture {tree!r} or its expected corpus not found under {SHARED} (only in the dev workplace)")
    return src, expected


def _identical_share(expected: Path, actual: Path) -> tuple[float, list[str]]:
    names = sorted(os.listdir(expected))
    differ = [n for n in names if not (actual / n).is_file() or (actual / n).read_bytes() != (expected / n).read_bytes()]
    extra = sorted(set(os.listdir(actual)) - set(names))
    return (len(names) - len(differ)) / len(names), differ + extra


@pytest.fixture(scope="module")
def imported_2025(tmp_path_factory):
    src, expected = _fixture("acornlib-2025-11", CORPORA / "acornlib-2025-11")
    out = tmp_path_factory.mktemp("imp2025") / "data" / "proofs"
    return import_acornlib(src, out), out, expected


@pytest.fixture(scope="module")
def imported_2026(tmp_path_factory):
    src, expected = _fixture("acornlib-2026-08-algebra-subset", FIXTURES / "acornlib-2026-08-algebra-subset.expected")
    out = tmp_path_factory.mktemp("imp2026") / "data" / "proofs"
    return import_acornlib(src, out), out, expected


def _manifest(path: Path) -> dict:
    return {row["file"]: row for row in map(json.loads, path.read_text().splitlines())}


def test_2025_fixture_reproduces_the_published_corpus(imported_2025):
    made, out, expected = imported_2025
    share, differ = _identical_share(expected / "proofs", out)
    assert share >= AIM, f"{share:.2%} identical; first differences: {differ[:10]}"
    # every certificate accounted for: 5,450 files plus the 8 of the two orphan certificate files
    assert made.files == 5450 and made.modules == 64
    assert made.certificates == 5458 == made.files + made.skipped_certificates + made.capped_certificates
    orphans = sorted(p.file for p in made.problems if p.kind == "orphan")
    assert orphans == ["build/ordered_monoid.jsonl", "build/type_system_tests.jsonl"]
    assert sum(made.methods.values()) == made.files
    for name in ("proof_00000.txt", "proof_00001.txt", "proof_00005.txt", "proof_01185.txt", "proof_00143.txt"):
        assert (out / name).read_bytes() == (expected / "proofs" / name).read_bytes(), name


def test_2025_manifest_rows(imported_2025):
    made, out, expected = imported_2025
    assert made.manifest == str(out.parent / "manifest.jsonl")
    ours, theirs = _manifest(out.parent / "manifest.jsonl"), _manifest(expected / "manifest.jsonl")
    assert sorted(ours) == sorted(theirs)
    assert ours["proof_00001.txt"] == {
        "cert": "build/add_group.jsonl", "file": "proof_00001.txt", "goal": "inverse_left", "line": 2,
        "method": "theorem", "module": "src/add_group.ac", "src_line": 22,
    }
    same = sum(ours[n] == theirs[n] for n in theirs)
    assert same / len(theirs) >= AIM


def test_2026_fixture_reproduces_the_expected_corpus(imported_2026):
    made, out, expected = imported_2026
    share, differ = _identical_share(expected / "proofs", out)
    assert share >= AIM, f"{share:.2%} identical; first differences: {differ[:10]}"
    assert made.files == made.certificates == 1016 and made.modules == 18 and made.layout == "2026"
    empty = [p.file for p in made.problems if p.kind == "empty"]
    # (the fixture README says 5 of 18 are empty; in the tree 2 are, and 16 modules have files)
    assert sorted(empty) == ["src/algebra/certs/add.jsonl", "src/algebra/certs/add_comm_semigroup.jsonl"]
    for name in ("proof_00000.txt", "proof_00224.txt", "proof_01015.txt"):
        assert (out / name).read_bytes() == (expected / "proofs" / name).read_bytes(), name
    # The one deliberate difference: the expected corpus puts the goal `r.act(g, x) = s.act(g, x)`
    # on the header `if forall(g: G, x: M) { r.act(g, x) = s.act(g, x) } {` (a condition, never a
    # goal in acorn's own output); the importer puts it on the claim inside the block.
    assert differ == ["proof_00623.txt"]
    assert (out / "proof_00623.txt").read_text().split("@G\n")[1].startswith("                r.act(g, x) = s.act(g, x)\n@C")
    ours = _manifest(out.parent / "manifest.jsonl")
    assert ours["proof_00000.txt"]["cert"] == "src/algebra/certs/add_comm_group.jsonl"
    assert ours["proof_00000.txt"]["src_line"] == 17
    # the corpus reader accepts every file
    assert corpus_stats(out).files == 1016


def test_import_is_deterministic(imported_2026, tmp_path):
    made, out, _expected = imported_2026
    again = import_acornlib(made.source, tmp_path / "data" / "proofs")
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "data" / "proofs"))
    for name in os.listdir(out):
        assert (out / name).read_bytes() == (tmp_path / "data" / "proofs" / name).read_bytes()
    assert (out.parent / "manifest.jsonl").read_bytes() == (tmp_path / "data" / "manifest.jsonl").read_bytes()
    assert again.to_dict()["methods"] == made.to_dict()["methods"]


# ------------------------------------------------------------------ a small tree built here


GOOD_AC = """from nat import Nat

theorem double(a: Nat) {
    a + a = 2 * a
} by {
    a + a = 1 * a + 1 * a
    1 * a + 1 * a = (1 + 1) * a
}

theorem plain(a: Nat) { a = a }
"""


def _good_certs() -> str:
    rows = [
        {"goal": "a + a = 1 * a + 1 * a", "proof": ["1 * a = a"]},
        {"goal": "1 * a + 1 * a = (1 + 1) * a", "proof": []},
        {"goal": "double", "proof": ["1 + 1 = 2"]},
        {"goal": "plain", "proof": None},
    ]
    return "".join(json.dumps(r) + "\n" for r in rows)


def _tree(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "src" / "good.ac").write_text(GOOD_AC)
    (root / "build" / "good.jsonl").write_text(_good_certs())
    return root


def test_small_tree_files(tmp_path):
    root = _tree(tmp_path / "lib")
    made = import_acornlib(root, tmp_path / "data" / "proofs")
    assert made.files == 4 and made.methods["exact"] == 2 and made.methods["theorem"] == 2
    out = tmp_path / "data" / "proofs"
    assert (out / "proof_00000.txt").read_text() == (
        "@T\ntheorem double(a: Nat) {\n    a + a = 2 * a\n} by {\n@G\n    a + a = 1 * a + 1 * a\n"
        "@C\na + a != 1 * a + 1 * a\n@P\n1 * a = a\n"
    )
    assert (out / "proof_00001.txt").read_text().endswith("@P\n")
    assert (out / "proof_00002.txt").read_text() == (
        "@G\ntheorem double(a: Nat) {\n    a + a = 2 * a\n}\n@C\na + a != 2 * a\n@P\n1 + 1 = 2\n"
    )
    assert (out / "proof_00003.txt").read_text() == "@G\ntheorem plain(a: Nat) { a = a }\n@C\na != a\n@P\n"


def test_hostile_tree_imports_the_good_modules_and_names_each_bad_one(tmp_path):
    root = _tree(tmp_path / "lib")
    src, build = root / "src", root / "build"
    # broken JSON line and a line without "goal" (the good lines around them still count)
    (src / "broken.ac").write_text(GOOD_AC)
    lines = _good_certs().splitlines()
    (build / "broken.jsonl").write_text("\n".join([lines[0], '{"goal": "a + a', '{"proof": []}', *lines[1:]]) + "\n")
    # a certificate file without a source module
    (build / "orphan.jsonl").write_text(_good_certs())
    # a source that is a dangling link
    (src / "missing.ac").symlink_to(src / "nowhere.ac")
    (build / "missing.jsonl").write_text(_good_certs())
    # a latin-1 source
    (src / "latin.ac").write_bytes(GOOD_AC.replace("from nat", "// caf\u00e9\nfrom nat").encode("latin-1"))
    (build / "latin.jsonl").write_text(_good_certs())
    # a symlink loop (a folder linking to its parent) and a self-linked certificate file
    (src / "loop").symlink_to(src)
    (build / "selfloop.jsonl").symlink_to(build / "selfloop.jsonl")
    # an empty certificate file
    (src / "empty.ac").write_text(GOOD_AC)
    (build / "empty.jsonl").write_text("")
    # a goal that is nowhere in the source
    (src / "lost.ac").write_text(GOOD_AC)
    (build / "lost.jsonl").write_text(json.dumps({"goal": "b * b = b", "proof": []}) + "\n")
    # a bad byte inside one claim: that claim's certificate is skipped, nothing else
    (src / "smudged.ac").write_bytes(GOOD_AC.encode().replace(b"(1 + 1) * a", b"(1 + 1) * a \xff"))
    (build / "smudged.jsonl").write_text(_good_certs())
    # a bad byte in one certificate's proof line: that certificate is skipped
    (build / "smudged_cert.jsonl").write_bytes(_good_certs().encode().replace(b"1 + 1 = 2", b"1 + 1 = 2 \xfe"))
    (src / "smudged_cert.ac").write_text(GOOD_AC)

    made = import_acornlib(root, tmp_path / "data" / "proofs")
    by_file = {}
    for p in made.problems:
        by_file.setdefault(p.file, []).append(p)
    assert [p.line for p in by_file["build/broken.jsonl"]] == [2, 3]
    assert by_file["build/broken.jsonl"][0].kind == "json"
    assert by_file["build/broken.jsonl"][1].kind == "no-goal"
    assert by_file["build/orphan.jsonl"][0].kind == "orphan"
    assert by_file["src/missing.ac"][0].kind == "unreadable"
    # one bad byte in a comment costs nothing: read with replacement, reported once
    assert by_file["src/latin.ac"][0].kind == "encoding" and "UTF-8" in by_file["src/latin.ac"][0].problem
    assert "no certificate touched" in by_file["src/latin.ac"][0].problem and by_file["src/latin.ac"][0].line == 1
    assert "(1 certificates skipped)" in by_file["src/smudged.ac"][0].problem
    assert by_file["src/smudged.ac"][0].line == 7
    assert "(1 certificates skipped)" in by_file["build/smudged_cert.jsonl"][0].problem
    assert by_file["src/loop"][0].kind == "symlink-loop"
    assert by_file["build/selfloop.jsonl"][0].kind == "symlink-loop"
    assert by_file["build/empty.jsonl"][0].kind == "empty"
    # a goal found only by position is a statistic, not a problem; --json keeps it
    assert "build/lost.jsonl" not in by_file
    assert made.fallbacks == [{"cert": "build/lost.jsonl", "line": 1, "file": made.fallbacks[0]["file"],
                               "method": "order", "module": "src/lost.ac", "src_line": made.fallbacks[0]["src_line"]}]
    assert all(len(v) == 1 for k, v in by_file.items() if k != "build/broken.jsonl")  # each reported once
    # good, broken (4 good lines), latin (4), lost (placed by position), smudged (4 - 1), smudged_cert (4 - 1)
    assert made.files == 4 + 4 + 4 + 1 + 3 + 3 and made.methods["order"] == 1
    assert made.certificates == made.files + made.skipped_certificates
    smudged = [r for r in map(json.loads, (tmp_path / "data" / "manifest.jsonl").read_text().splitlines())
               if r["module"] == "src/smudged.ac"]
    assert [r["goal"] for r in smudged] == ["a + a = 1 * a + 1 * a", "double", "plain"]
    lost = [r for r in map(json.loads, (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()) if r["module"] == "src/lost.ac"]
    assert lost[0]["method"] == "order" and lost[0]["src_line"] is not None
    assert corpus_stats(tmp_path / "data" / "proofs").files == made.files == 19


def test_not_a_checkout_is_one_line_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(TacticsError, match="not an acornlib checkout.*looked for build/"):
        import_acornlib(tmp_path, tmp_path / "out" / "proofs")
    assert main(["import", "acornlib", str(tmp_path), "--data-dir", str(tmp_path / "out" / "proofs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "out" / "proofs").exists()


def test_existing_corpus_is_replaced_only_with_force(tmp_path, capsys):
    root = _tree(tmp_path / "lib")
    data = tmp_path / "data" / "proofs"
    data.mkdir(parents=True)
    (data / "mine.txt").write_text("@G\nx\n@C\nnot x\n")
    with pytest.raises(TacticsError, match="--force"):
        import_acornlib(root, data)
    assert (data / "mine.txt").exists()
    made = import_acornlib(root, data, force=True)
    assert made.replaced and not (data / "mine.txt").exists() and made.files == 4
    assert main(["import", "acornlib", str(root), "--data-dir", str(data), "--force", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"] == 4 and out["methods"]["theorem"] == 2 and out["replaced"] is True
    assert main(["import", "acornlib", str(root), "--data-dir", str(data)]) == 2
    assert "pass --force" in capsys.readouterr().err


def test_cancel_leaves_the_old_corpus_and_manifest(tmp_path):
    root = _tree(tmp_path / "lib")
    for i in range(5):
        (root / "src" / f"m{i}.ac").write_text(GOOD_AC)
        (root / "build" / f"m{i}.jsonl").write_text(_good_certs())
    data = tmp_path / "data" / "proofs"
    import_acornlib(root, data, include=["src/good.ac"])
    before = {n: (data / n).read_bytes() for n in os.listdir(data)}
    manifest = (tmp_path / "data" / "manifest.jsonl").read_bytes()
    token = CancelToken()

    def progress(done, total, message):
        if done >= 3:
            token.cancel()

    with pytest.raises(Cancelled):
        import_acornlib(root, data, force=True, progress=progress, cancel=token)
    assert {n: (data / n).read_bytes() for n in os.listdir(data)} == before
    assert (tmp_path / "data" / "manifest.jsonl").read_bytes() == manifest
    assert sorted(os.listdir(tmp_path / "data")) == ["manifest.jsonl", "proofs"]  # no temp folders left


def test_include_exclude_and_max_bytes(tmp_path):
    root = _tree(tmp_path / "lib")
    (root / "src" / "other.ac").write_text(GOOD_AC)
    (root / "build" / "other.jsonl").write_text(_good_certs())
    made = import_acornlib(root, tmp_path / "a" / "proofs", exclude=["src/other*"])
    assert made.modules == 1 and made.files == 4
    made = import_acornlib(root, tmp_path / "b" / "proofs", include=["src/o*"])
    assert made.modules == 1
    with pytest.raises(TacticsError, match="matches"):
        import_acornlib(root, tmp_path / "c" / "proofs", include=["nothing/*"])
    made = import_acornlib(root, tmp_path / "d" / "proofs", max_bytes=250)
    assert made.bytes <= 250 and made.capped_certificates > 0
    assert made.certificates == made.files + made.capped_certificates


def test_2026_layout_small(tmp_path):
    root = tmp_path / "lib"
    (root / "src" / "alg" / "certs").mkdir(parents=True)
    (root / "src" / "alg" / "x.ac").write_text(GOOD_AC)
    rows = [{"goal": "a + a = 1 * a + 1 * a", "p": [{"c": "1 * a = a", "r": "inst"}]}, {"goal": "double", "p": []}]
    (root / "src" / "alg" / "certs" / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    made = import_acornlib(root, tmp_path / "data" / "proofs")
    assert made.layout == "2026" and made.files == 2
    assert (tmp_path / "data" / "proofs" / "proof_00000.txt").read_text().endswith("@P\n1 * a = a\n")


@pytest.mark.parametrize(
    "goal, hyp, cf",
    [
        ("a = b", None, "a != b"),
        ("a != b", None, "a = b"),
        ("not p(x)", None, "p(x)"),
        ("true", None, "false"),
        ("p and q", None, "not (p and q)"),
        ("a = b implies c < d", "a = b", "not c < d"),
        ("(forall(x: T) { f(x) = g(x) }) implies f = g", "forall(x: T) { f(x) = g(x) }", "f != g"),
        ("a - b = A.0 = (a = b)", None, "a - b = A.0 != (a = b)"),
    ],
)
def test_counterfactual_rules(goal, hyp, cf):
    assert hypothesis_and_counterfactual(goal) == (hyp, cf)


def test_goal_key_ignores_spelling():
    assert goal_key("(-a + a) + (-a + --a) = -a + --a") == goal_key("-a + a + (-a + --a) = -a + --a")
    assert goal_key("let k: Nat satisfy { m = Int.from_nat(k) }") == goal_key("exists(k0: Nat) { m = Int.from_nat(k0) }")
    assert goal_key("p(Nat.0)") == goal_key("p(0)")
    assert goal_key("lib(m).f[T](x)") == goal_key("f(x)")
    assert negate("not (a < a)") == "a < a"


REAL_TRAINING = TESTS / "fixtures" / "acorn_training_f47631b0"


def _sections(text: str) -> dict:
    from tactics_core.gpt.corpus import parse_proof_text

    pf = parse_proof_text(text, "x")
    return {k: getattr(pf, k) for k in ("theorem", "goal", "hypothesis", "counterfactual", "proof")}


def test_acorn_style_reproduces_real_acorn_training_output(tmp_path):
    """Against files acorn f47631b0's own `training` wrote (committed sample, two modules of c30e377):
    with `style="acorn"` every `@T`, `@G`, `@H` and `@P` is acorn's, and the only files that differ
    differ in `@C` of a theorem, printed by acorn's code generator (docs/corpus.md)."""
    expected = sorted((REAL_TRAINING / "expected").glob("proof_*.txt"))
    results = {}
    for style in ("published", "acorn"):
        out = tmp_path / style / "proofs"
        report = import_acornlib(REAL_TRAINING / "acornlib", out, style=style)
        assert report.files == len(expected) == 41
        results[style] = [(out / e.name).read_text() for e in expected]
    acorn = results["acorn"]
    identical = sum(a == e.read_text() for a, e in zip(acorn, expected))
    # 40 of 41 at the time of writing (36 with block-scoped @T alone); the other is
    # `sum[R](map[Nat, R](...))`, whose callees live in modules this sample does not hold
    assert identical >= 40
    assert identical > sum(a == e.read_text() for a, e in zip(results["published"], expected))
    for ours, e in zip(acorn, expected):
        mine, theirs = _sections(ours), _sections(e.read_text())
        differing = {k for k in mine if mine[k] != theirs[k]}
        assert differing <= {"counterfactual"}, (e.name, differing)
        assert not differing or mine["goal"][0].startswith("theorem"), e.name  # only a theorem's own goal
        if differing:  # and only in type arguments
            unbracket = lambda lines: [re.sub(r"\[[^\[\]]*\]", "", re.sub(r"\[[^\[\]]*\]", "", t)) for t in lines]
            assert unbracket(mine["counterfactual"]) == unbracket(theirs["counterfactual"]), e.name


def test_unknown_style_is_refused(tmp_path):
    with pytest.raises(TacticsError, match="--style must be one of published, acorn"):
        import_acornlib(REAL_TRAINING / "acornlib", tmp_path / "p", style="block")


def test_block_prefix_starts_at_the_innermost_open_block():
    from tactics_core.acorn.library.rendering import block_prefix

    theorem = ["theorem t(a: Nat) {", "    a = a", "} by {", "    a = a", "    if a = a {", "        // { not a brace", "        a = a"]
    assert block_prefix(theorem) == theorem[4:]  # the `if` block, whose braces are the only open ones
    assert block_prefix(theorem[:4]) == theorem[:4]  # `} by {` continues the theorem's block
    branches = theorem[:5] + ["        a = a", "    } else {", "        a = a"]
    assert block_prefix(branches) == branches[6:]  # `} else {` opens a block of its own


def test_summary_groups_problems_by_kind_and_json_keeps_every_entry(tmp_path, capsys):
    root = _tree(tmp_path / "lib")
    for k in range(7):
        (root / "src" / f"e{k}.ac").write_text(GOOD_AC)
        (root / "build" / f"e{k}.jsonl").write_text("")
    (root / "build" / "lost.jsonl").write_text(json.dumps({"goal": "b * b = b", "proof": []}) + "\n")
    (root / "src" / "lost.ac").write_text(GOOD_AC)
    data = tmp_path / "data" / "proofs"
    assert main(["import", "acornlib", str(root), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "problems         7  in 1 kind" in out
    assert "  empty certificate files: 7" in out and "    ... and 4 more (see --json)" in out
    assert out.count("build/e") == 3 and "lost" not in out  # a goal placed by position is a count, not a problem
    assert "order 1" in out
    assert "--preset library" not in out  # a small import: the default presets fit it
    assert main(["import", "acornlib", str(root), "--data-dir", str(data), "--force", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["problems"]) == 7 and [f["cert"] for f in d["fallbacks"]] == ["build/lost.jsonl"]


def test_a_whole_library_import_points_at_the_library_preset(tmp_path, capsys, monkeypatch):
    from tactics_core.cli import import_cmd

    root = _tree(tmp_path / "lib")
    monkeypatch.setattr(import_cmd, "LIBRARY_FILES", 1)
    assert main(["import", "acornlib", str(root), "--data-dir", str(tmp_path / "data" / "proofs")]) == 0
    assert "then: tactics train --preset library --data-dir" in capsys.readouterr().out


def test_file_names_widen_only_past_99999():
    from tactics_core.acorn.library.importer import name_digits

    assert [name_digits(n) for n in (0, 1, 5450, 100_000, 100_001, 204_058, 1_000_001)] == [5, 5, 5, 5, 6, 6, 7]


MULTILINE_IF_AC = """theorem t(a: Nat, b: Nat) {
    a = b implies b = a
} by {
    if a = b and
       b = a {
        b = a
        forall(k: Nat) { k.suc != 0 }
        (a + b).double = a.double + b.double
    }
    a = b implies b = a
}
"""


def test_a_multi_line_if_condition_is_a_header_and_its_claims_are_located(tmp_path):
    root = tmp_path / "lib"
    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "src" / "m.ac").write_text(MULTILINE_IF_AC)
    rows = [
        {"goal": "b = a", "proof": []},
        {"goal": "k.suc != 0", "proof": []},  # acorn's certificate of a forall claim states its body
        {"goal": "double(a + b) = double(a) + double(b)", "proof": []},  # methods printed as calls
        {"goal": "a = b implies b = a", "proof": []},
        {"goal": "t", "proof": []},
    ]
    (root / "build" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    made = import_acornlib(root, tmp_path / "data" / "proofs")
    manifest = [json.loads(line) for line in (tmp_path / "data" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["method"], r["src_line"]) for r in manifest] == [
        ("exact", 6), ("exact", 7), ("fuzzy", 8), ("exact", 10), ("theorem", 1)
    ]
    assert made.methods["unlocated"] == made.methods["order"] == 0
    first = (tmp_path / "data" / "proofs" / "proof_00000.txt").read_text()
    # @G is the claim, never the block; the condition lines belong to @T
    assert first.split("@G\n")[1].startswith("        b = a\n@C\n")
    assert "    if a = b and\n       b = a {\n@G" in first


ACORN_STYLE_AC = """structure Pos {
    n: Nat
} constraint {
    n > 0
} by {
    1 > 0
}

let half(a: Nat) -> h: Nat satisfy {
    h + h = a or h + h + 1 = a
}

theorem t(a: Nat, b: Nat) {
    a = b implies b = a
} by {
    if a = b and
       b = b {
        b = a
    }
    forall(k: Nat) { k = k implies k + 0 = k }
}
"""


def test_acorn_style_writes_what_acorn_writes(tmp_path):
    """The shapes acorn f47631b0's `training` writes apart from the published corpora (seen in
    its output for acornlib c30e377: finite_group.ac, nat.ac, list_base.ac, abs_conv.ac)."""
    root = tmp_path / "lib"
    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "src" / "m.ac").write_text(ACORN_STYLE_AC)
    rows = [{"goal": g, "proof": []} for g in
            ("1 > 0", "n > 0", "h + h = a or h + h + 1 = a", "b = a", "k = k implies k + 0 = k", "t")]
    (root / "build" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import_acornlib(root, tmp_path / "d" / "proofs", style="acorn")
    files = [(tmp_path / "d" / "proofs" / f"proof_{k:05d}.txt").read_text() for k in range(6)]
    structure = "structure Pos {\n    n: Nat\n} constraint {\n"
    assert files[0].startswith("@T\n" + structure + "    n > 0\n} by {\n@G\n    1 > 0\n")
    assert files[1].startswith("@T\n" + structure + "@G\n    n > 0\n@C\n")
    assert files[2].startswith("@T\nlet half(a: Nat) -> h: Nat satisfy {\n@G\n    h + h = a or h + h + 1 = a\n@C\n")
    # @T from the `if` statement's first line, though its `{` is on the second
    assert files[3].startswith("@T\n    if a = b and\n       b = b {\n@G\n        b = a\n@C\n")
    assert files[4].startswith("@G\n    forall(k: Nat) { k = k implies k + 0 = k }\n@H\nk = k\n")  # no @T
    assert files[5] == "@G\ntheorem t(a: Nat, b: Nat) {\n    a = b implies b = a\n} by {\n@C\nb != a\n@P\n"


def test_transitional_layout_certs_folders_with_proof_lines(tmp_path):
    """Mid-2026 checkouts have `<dir>/certs/<stem>.jsonl` whose lines still carry `"proof"`
    (not `"p"`): read like the 2026 layout."""
    root = tmp_path / "lib"
    (root / "src" / "certs").mkdir(parents=True)
    (root / "src" / "good.ac").write_text(GOOD_AC)
    (root / "src" / "certs" / "good.jsonl").write_text(_good_certs())
    made = import_acornlib(root, tmp_path / "d" / "proofs")
    assert made.layout == "2026" and made.files == 4 and made.methods["exact"] == 2 and not made.problems
    assert (tmp_path / "d" / "proofs" / "proof_00000.txt").read_text().endswith("@P\n1 * a = a\n")


TYPECLASSES_AC = """typeclass P: PartialOrder {
    lte: (P, P) -> Bool

    reflexive {
        is_reflexive(P.lte)
    }

    transitive {
        is_transitive(P.lte)
    }
}

typeclass M: Nothing extends PartialOrder {
    // All the properties are provided by the base typeclasses.
}

typeclass S: Semi {
    distrib_left(a: S, b: S, c: S) {
        a * (b + c) = (a * b) + (a * c)
    }
}
"""

INSTANCES_AC = """instance Foo: PartialOrder {
    let lte = Foo.lte
}

instance Foo: Nothing

instance Foo: Semi
"""


@pytest.mark.parametrize("goals, expected", [
    # acorn's 2026 certificates: one per condition, in its words, whatever the order
    (["is_transitive[Foo](Foo.lte)", "is_reflexive[Foo](Foo.lte)",
      "forall(x0: Foo, x1: Foo, x2: Foo) { x0 * (x1 + x2) = x0 * x1 + x0 * x2 }"],
     ["instance Foo: PartialOrder {", "instance Foo: PartialOrder {", "instance Foo: Semi"]),
    # 2025: all of an instance's conditions in one certificate; the next belongs to the next instance
    (["is_reflexive[Foo](Foo.lte) and is_transitive[Foo](Foo.lte)", "forall(x0: Foo) { x0 = x0 }"],
     ["instance Foo: PartialOrder {", "instance Foo: Semi"]),
])
def test_instance_certificates_go_to_their_conditions(goals, expected):
    """A typeclass condition needs no arguments (`reflexive { ... }`); one with no conditions of its
    own (`Nothing`) takes no certificate (acorn c30e377's `instance Complex: AddCommMonoid`)."""
    from tactics_core.acorn.library.importer import module_files
    from tactics_core.acorn.library.records import Certificate
    from tactics_core.acorn.library.source_parser import typeclass_conditions

    typeclasses = typeclass_conditions(TYPECLASSES_AC.split("\n"))
    assert typeclasses["PartialOrder"] == ("P", ["is_reflexive(P.lte)", "is_transitive(P.lte)"])
    assert typeclasses["Nothing"] == ("M", [])
    assert typeclasses["Semi"][1] == ["forall(a: S, b: S, c: S) { a * (b + c) = (a * b) + (a * c) }"]
    certs = [Certificate(k + 1, g, ()) for k, g in enumerate(goals)]
    placed = [p.slot.g_lines[0] for _c, p, _t in module_files(INSTANCES_AC, certs, typeclasses, style="acorn")]
    assert placed == expected


def test_a_goal_an_if_condition_also_states_is_placed_as_acorn_places_it(tmp_path):
    """acorn's own `training` (committed output, fixtures README) puts `f(x) = g(x)` on the claim
    inside the block, not on the header `if forall(x: Nat) { f(x) = g(x) } {`: the importer writes
    its three files byte for byte, in both the `@G` and the `@T` that follow from that."""
    case = REAL_TRAINING / "if_condition"
    out = tmp_path / "proofs"
    import_acornlib(case / "acornlib", out, style="acorn")
    expected = sorted((case / "expected").glob("proof_*.txt"))
    assert len(expected) == 3
    for e in expected:
        assert (out / e.name).read_text() == e.read_text(), e.name
    assert "@G\n            f(x) = g(x)\n" in expected[0].read_text()
