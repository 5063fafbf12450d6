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
    # 5 steps end before the first evaluation: quickstart falls back to the latest checkpoint
    assert "no best_model.pt yet" in out
    exports = list((tmp_path / "export").glob("tactics-*"))
    assert len(exports) == 1
    assert {p.name for p in exports[0].iterdir()} == {"model.onnx", "tokenizer.json", "config.json"}
    assert json.loads((exports[0] / "config.json").read_text())["training_step"] == 5
    assert "$ tactics complete" in out and "goal file:" in out

    # Run again: the corpus and the tokenizer are kept, not remade.
    main(["quickstart", "--workspace", str(tmp_path), "--max-steps", "5"])
    again = capsys.readouterr().out
    assert "using your corpus" in again
    assert "(delete it or run `tactics tokenizer train` to retrain)" in again
