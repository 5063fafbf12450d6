"""The corpus reader: parsing, every kind of bad file, stats against real data, the CLI."""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tactics_core.cli import main
from tactics_core.common.errors import Cancelled, TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt import corpus as corpus_mod
from tactics_core.gpt.corpus import (
    CorpusProblem,
    Problem,
    ProofFile,
    corpus_stats,
    iter_corpus,
    list_proof_files,
    parse_proof_text,
    read_proof_file,
)

from conftest import REPO, copy_slice

FULL = (
    "@T\n"
    "theorem inverse_left[A: AddGroup](a: A) {\n"
    "    -a + a = A.0\n"
    "} by {\n"
    "@G\n"
    "    (-a + a) + (-a + --a) = -a + --a\n"
    "@H\n"
    "a = a\n"
    "@C\n"
    "-a + a + (-a + --a) != -a + --a\n"
    "@P\n"
    "-a + (a + -a) = -a + a + -a\n"
    "a + -a = A.0\n"
)


# ---------------------------------------------------------------- parser


def test_parse_all_sections_and_round_trip():
    pf = parse_proof_text(FULL, "proof_00000.txt")
    assert pf.name == "proof_00000.txt"
    assert pf.theorem == ("theorem inverse_left[A: AddGroup](a: A) {", "    -a + a = A.0", "} by {")
    assert pf.goal == ("    (-a + a) + (-a + --a) = -a + --a",)
    assert pf.hypothesis == ("a = a",)
    assert pf.counterfactual == ("-a + a + (-a + --a) != -a + --a",)
    assert pf.proof == ("-a + (a + -a) = -a + a + -a", "a + -a = A.0")
    assert pf.text() == FULL
    assert pf.context_text() == FULL[: FULL.index("@P\n")]
    assert pf.prompt() == pf.context_text() + "@P\n"
    assert pf.prompt(["-a + (a + -a) = -a + a + -a"]) == FULL[: FULL.index("a + -a = A.0")]


def test_parse_optional_sections_missing():
    pf = parse_proof_text("@G\ntheorem t { x = x }\n@C\nx != x\n@P\nfoo\n", "a.txt")
    assert pf.theorem == () and pf.hypothesis == ()
    assert pf.proof == ("foo",)
    assert pf.text() == "@G\ntheorem t { x = x }\n@C\nx != x\n@P\nfoo\n"


def test_parse_bare_p_and_no_p():
    bare = parse_proof_text("@G\nx\n@C\ny\n@P\n", "a.txt")
    assert bare.proof == () and bare.has_proof
    assert bare.text() == "@G\nx\n@C\ny\n@P\n"
    none = parse_proof_text("@G\nx\n@C\ny\n", "a.txt")
    assert none.proof is None and not none.has_proof
    assert none.text() == "@G\nx\n@C\ny\n"
    assert none.prompt() == "@G\nx\n@C\ny\n@P\n"


def test_parse_crlf_bom_and_no_final_newline():
    crlf = "\ufeff" + FULL.replace("\n", "\r\n")
    assert parse_proof_text(crlf, "a.txt") == parse_proof_text(FULL, "a.txt")
    assert parse_proof_text(FULL.replace("\n", "\r"), "a.txt").text() == FULL
    assert parse_proof_text(FULL.rstrip("\n"), "a.txt").text() == FULL


def test_read_proof_file_with_bom_bytes(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"\xef\xbb\xbf" + FULL.replace("\n", "\r\n").encode())
    assert read_proof_file(path).text() == FULL


def test_lines_starting_with_at_but_no_letter_are_content():
    pf = parse_proof_text("@G\nx\n@C\ny\n@P\n@ 1\n  @P\n@1\n", "a.txt")
    assert pf.proof == ("@ 1", "  @P", "@1")


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("", "empty file"),
        ("  \n\t\n", "only whitespace"),
        ("@T\nx\n@C\ny\n", "missing @G"),
        ("@G\nx\n@P\nz\n", "missing @C"),
        ("@G\nx\n@X\n@C\ny\n", "unknown marker @X on line 3"),
        ("@G\nx\n@C\ny\n@Proof\n", "unknown marker @Proof on line 5"),
        ("@G\nx\n@T\ny\n@C\nz\n", "@T on line 3 comes after @G"),
        ("@G\nx\n@C\ny\n@C\nz\n", "duplicate @C on line 5"),
        ("hello\n@G\nx\n@C\ny\n", "text before the first marker on line 1"),
        ("@G\n@C\ny\n", "@G (goal) section is empty"),
        ("@G\nx\n" + "y" * 70_000 + "\n@C\nz\n", "line 3 is 70,000 characters long"),
    ],
)
def test_parse_problems(text, phrase):
    with pytest.raises(CorpusProblem) as info:
        parse_proof_text(text, "bad.txt")
    assert info.value.file == "bad.txt"
    assert phrase in info.value.problem
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TacticsError)


# ---------------------------------------------------------------- theorem_key


def test_theorem_key_one_line_theorem_matches_its_claims():
    theorem_file = parse_proof_text("@G\ntheorem t(a: Nat) { a = a }\n@C\na != a\n@P\n", "1.txt")
    claim_file = parse_proof_text(
        "@T\ntheorem t(a: Nat) { a = a } by {\n@G\n    a = a\n@C\na != a\n@P\n", "2.txt"
    )
    other = parse_proof_text("@G\ntheorem u(a: Nat) { a = a }\n@C\na != a\n@P\n", "3.txt")
    assert theorem_file.theorem_key() == claim_file.theorem_key() == "theorem t(a: Nat)"
    assert other.theorem_key() != theorem_file.theorem_key()


def test_theorem_key_groups_real_files(corpus_2025):
    """Every claim file's theorem has a theorem-level goal file with the same key."""
    by_key: dict[str, list[ProofFile]] = {}
    for pf in iter_corpus(corpus_2025):
        by_key.setdefault(pf.theorem_key(), []).append(pf)
    # proof_00000 is a claim inside inverse_left, proof_00001 is inverse_left itself.
    first = {pf.name: pf.theorem_key() for pf in by_key[next(iter(by_key))]}
    assert first["proof_00000.txt"] == first["proof_00001.txt"] == "theorem inverse_left[A: AddGroup](a: A)"
    for key, files in by_key.items():
        if any(pf.theorem for pf in files):
            assert any(not pf.theorem for pf in files), f"claims of {key!r} have no theorem-level file"
    sizes = sorted(len(v) for v in by_key.values())
    assert 1000 < len(by_key) < 3000  # 1,748 groups over 5,450 files when this was written
    assert sizes[-1] > 10 and sum(sizes) == 5450


# ---------------------------------------------------------------- bad files in a folder

GOOD = "@G\ntheorem t{n}(a: Nat) {{ a = a }}\n@C\na != a\n@P\nline {n}\n"


def _good(folder: Path, n: int) -> str:
    name = f"proof_{n:05d}.txt"
    (folder / name).write_text(GOOD.format(n=n))
    return name


def test_every_problem_reported_once_and_good_files_kept(tmp_path, monkeypatch):
    data = tmp_path / "proofs"
    data.mkdir()
    good = [_good(data, n) for n in (0, 10, 20, 30)]
    bad = {
        "b_empty.txt": (b"", "empty file"),
        "b_space.txt": (b" \n \n", "only whitespace"),
        "b_nul.txt": (b"@G\nx\x00y\n@C\nz\n", "binary data (byte 0x00 at offset 4)"),
        "b_latin1.txt": ("@G\ncaf\xe9\n@C\nz\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        "b_nogoal.txt": (b"@T\nx\n@C\nz\n", "missing @G"),
        "b_noc.txt": (b"@G\nx\n@P\nz\n", "missing @C"),
        "b_marker.txt": (b"@G\nx\n@Q\n@C\nz\n", "unknown marker @Q"),
        "b_order.txt": (b"@C\nz\n@G\nx\n", "comes after @C"),
        "b_huge_line.txt": (b"@G\n" + b"x" * 70_000 + b"\n@C\nz\n", "characters long"),
    }
    for name, (content, _) in bad.items():
        (data / name).write_bytes(content)
    (data / "b_dir.txt").mkdir()
    bad["b_dir.txt"] = (None, "is a directory")
    os.symlink("b_loop.txt", data / "b_loop.txt")
    bad["b_loop.txt"] = (None, "symbolic link loop")
    os.mkfifo(data / "b_fifo.txt")
    bad["b_fifo.txt"] = (None, "not a regular file")
    with open(data / "b_big.txt", "wb") as fh:  # sparse: 9 MiB without writing them
        fh.truncate(9 * 1024 * 1024)
    bad["b_big.txt"] = (None, "too large (9,437,184 bytes")
    (data / "b_locked.txt").write_text(GOOD.format(n=99))
    bad["b_locked.txt"] = (None, "permission denied")
    (data / "README.md").write_text("not a proof file, ignored")
    (data / ".proof_tmp.txt").write_text("hidden temp file, ignored")

    real_open = os.open

    def fake_open(path, flags, *a, **kw):  # tests run as root, so chmod 000 would not stop a read
        if str(path).endswith("b_locked.txt"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(corpus_mod.os, "open", fake_open)
    problems: list[Problem] = []
    files = list(iter_corpus(data, on_problem=problems.append))
    assert [pf.name for pf in files] == good
    assert sorted(p.file for p in problems) == sorted(bad)  # each exactly once
    for p in problems:
        assert bad[p.file][1] in p.problem, (p.file, p.problem)
        assert "\n" not in p.problem


def test_file_vanishing_mid_scan_is_reported(tmp_path):
    data = tmp_path / "proofs"
    data.mkdir()
    names = [_good(data, n) for n in range(5)]
    problems: list[Problem] = []
    seen = []
    for pf in iter_corpus(data, on_problem=problems.append):
        seen.append(pf.name)
        if len(seen) == 1:
            (data / names[3]).unlink()
    assert seen == [n for i, n in enumerate(names) if i != 3]
    assert problems == [Problem(names[3], "vanished while the corpus was read (file not found)")]


def test_missing_empty_and_unusable_folders(tmp_path):
    with pytest.raises(TacticsError, match=r"data folder .*nope not found; run `tactics demo`"):
        list_proof_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TacticsError, match="has no proof files"):
        list(iter_corpus(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "proof_1.txt").write_text("")
    (bad / "proof_2.txt").write_text("@G\nx\n")
    problems = []
    with pytest.raises(TacticsError, match=r"no usable proof files .*\(2 skipped; first: proof_1.txt: empty file\)"):
        list(iter_corpus(bad, on_problem=problems.append))
    assert len(problems) == 2
    notdir = tmp_path / "file.txt"
    notdir.write_text("x")
    with pytest.raises(TacticsError, match="is not a folder"):
        corpus_stats(notdir)


def test_cancel_and_progress(tmp_path):
    data = tmp_path / "proofs"
    data.mkdir()
    for n in range(100):
        _good(data, n)
    calls = []
    stats = corpus_stats(data, progress=lambda d, t, m: calls.append((d, t)))
    assert stats.files == 100
    assert calls[0] == (0, 100) and calls[-1] == (100, 100)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        corpus_stats(data, cancel=token)


# ---------------------------------------------------------------- stats on real data


def _nearest_rank(values, q):
    values = sorted(values)
    return values[math.ceil(q / 100 * len(values)) - 1]


def test_stats_on_real_slice_match_independent_count(slice_2025):
    sizes, shares, proof_lines, chars = [], {m: 0 for m in "TGHCP"}, [], 0
    nonempty = 0
    for path in sorted(slice_2025.iterdir()):
        raw = path.read_bytes()
        sizes.append(len(raw))
        text = raw.decode("utf-8")
        chars += len(text)
        lines = text.split("\n")
        for m in "TGHCP":
            shares[m] += f"@{m}" in lines
        if "@P" in lines:
            after = lines[lines.index("@P") + 1 :]
            n = len([line for line in after if line != ""]) if after[-1:] == [""] else len(after)
            proof_lines.append(n)
            nonempty += n > 0
    d = corpus_stats(slice_2025).to_dict()
    assert d["files"] == 300 and d["skipped"] == []
    assert d["bytes"] == sum(sizes)
    assert d["chars"] == chars
    assert d["size"]["max"] == max(sizes)
    assert d["size"]["median"] == _nearest_rank(sizes, 50)
    assert d["size"]["p95"] == _nearest_rank(sizes, 95)
    assert d["size"]["mean"] == round(sum(sizes) / 300, 1)
    for m in "TGHCP":
        assert d["sections"][m] == pytest.approx(shares[m] / 300)
    assert 0 < d["sections"]["T"] < 1 and 0 < d["sections"]["H"] < 1
    assert d["proof_nonempty"] == pytest.approx(nonempty / 300)
    assert d["proof_lines"]["total"] == sum(proof_lines)
    assert d["proof_lines"]["max"] == max(proof_lines)


def test_stats_agree_with_corpus_readme(corpus_2025):
    """acornlib-2025-11/README.md: 5,450 files, 5,557,665 bytes, mean 1019.8, median 695,
    p95 3065, max 7593; @T / @H / @P / non-empty @P 67.7% / 16.3% / 100.0% / 93.8%."""
    d = corpus_stats(corpus_2025).to_dict()
    assert (d["files"], d["bytes"]) == (5450, 5_557_665)
    assert d["size"] == {"mean": 1019.8, "median": 695, "p95": 3065, "max": 7593, "min": d["size"]["min"]}
    shares = [round(100 * x, 1) for x in (d["sections"]["T"], d["sections"]["H"], d["sections"]["P"], d["proof_nonempty"])]
    assert shares == [67.7, 16.3, 100.0, 93.8]


# ---------------------------------------------------------------- CLI


def test_cli_stats_json_schema(tmp_path, corpus_2025, capsys):
    data = copy_slice(corpus_2025, tmp_path / "proofs", 40)
    (data / "proof_99999.txt").write_bytes(b"\x00\x01")
    assert main(["corpus", "stats", "--data-dir", str(data), "--json"]) == 0
    out = capsys.readouterr().out
    d = json.loads(out)
    assert d["files"] == 40
    assert isinstance(d["bytes"], int) and isinstance(d["chars"], int) and d["chars"] <= d["bytes"]
    assert set(d["sections"]) == set("TGHCP")
    assert all(0.0 <= v <= 1.0 for v in d["sections"].values())
    assert d["skipped"] == [{"file": "proof_99999.txt", "problem": d["skipped"][0]["problem"]}]
    assert "binary data" in d["skipped"][0]["problem"]
    assert set(d["size"]) >= {"mean", "median", "p95", "max"}
    assert set(d["proof_lines"]) >= {"mean", "median", "max"}


def test_cli_stats_table(tmp_path, corpus_2025, capsys):
    data = copy_slice(corpus_2025, tmp_path / "proofs", 20)
    (data / "proof_bad.txt").write_text("@G\nx\n")
    assert main(["corpus", "stats", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    total = sum(p.stat().st_size for p in data.glob("proof_0*.txt"))
    assert f"{total:,}" in out
    assert "files        20  (1 skipped)" in out
    assert "proof_bad.txt  missing @C" in out


def test_cli_missing_and_empty_dir_exit_2(tmp_path, capsys):
    assert main(["corpus", "stats", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data folder") and "tactics demo" in err and err.count("\n") == 1
    (tmp_path / "empty").mkdir()
    assert main(["corpus", "stats", "--data-dir", str(tmp_path / "empty"), "--json"]) == 2
    assert "has no proof files" in capsys.readouterr().err


def test_cli_subprocess_json(tmp_path, corpus_2025):
    data = copy_slice(corpus_2025, tmp_path / "proofs", 10)
    result = subprocess.run(
        [sys.executable, "-m", "tactics_core", "corpus", "stats", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress line when stderr is not a terminal
    d = json.loads(result.stdout)
    assert d["files"] == 10 and d["skipped"] == []
