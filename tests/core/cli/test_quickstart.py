"""`tactics quickstart`, the README's main command: the whole loop in an empty folder."""

from __future__ import annotations

import json

import pytest

from tactics_core.cli import main


@pytest.mark.slow
def test_quickstart_runs_the_whole_loop_in_an_empty_folder(tmp_path, capsys):
    code = main(["quickstart", "--workspace", str(tmp_path), "--max-steps", "5"])
    out = capsys.readouterr().out
    assert code == 0, out
    # 1. the demo corpus, 2. the tokenizer, 3. a run, 4. a verified export, 5. a completion
    assert len(list((tmp_path / "data" / "proofs").glob("proof_*.txt"))) == 3000
    assert (tmp_path / "checkpoints" / "tokenizer.json").is_file()
    # 5 steps end before the first periodic evaluation; the final one still makes best_model.pt
    assert (tmp_path / "checkpoints" / "best_model.pt").is_file() and "no best_model.pt yet" not in out
    exports = list((tmp_path / "export").glob("tactics-*"))
    assert len(exports) == 1
    assert {p.name for p in exports[0].iterdir()} == {"model.onnx", "tokenizer.json", "config.json"}
    assert json.loads((exports[0] / "config.json").read_text())["training_step"] == 5
    # The completion the prover's way: its prompt, then a rollout of attempts on the export.
    assert "goal file:" in out and "prompt: " in out and "without @P" in out
    assert "attempt  1/10" in out and "the prover's budget: 5 s" in out and "tactics complete" in out

    # Run again: the corpus and the tokenizer are kept, not remade.
    main(["quickstart", "--workspace", str(tmp_path), "--max-steps", "5"])
    again = capsys.readouterr().out
    assert "using your corpus" in again
    assert "(delete it or run `tactics tokenizer train` to retrain)" in again
