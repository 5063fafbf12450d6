"""The lines `tactics train` prints for evaluations: how far early stopping is, or that it is off."""

import io

from tactics_core.cli.train_cmd import _Printer
from tactics_core.runs.run_events import EvalEvent


def _printed(**fields) -> str:
    out = io.StringIO()
    _Printer(out)(EvalEvent(step=300, val_loss=0.19, best_score=0.37, **fields))
    return out.getvalue()


def test_a_scorer_eval_line_counts_toward_early_stop():
    text = _printed(select_by="used_rank", bad_evals=2, patience=6, auc=0.978, used_rank=0.37, top10_hit=0.36)
    assert "used steps rank 0.3700" in text and "(best used_rank 0.3700; 2/6 without improvement)" in text


def test_patience_zero_is_printed_as_early_stop_off():
    scorer = _printed(select_by="used_rank", bad_evals=4, patience=0, auc=0.978, used_rank=0.38, top10_hit=0.36)
    gpt = _printed(val_bpb=1.1, bad_evals=4, patience=0)
    assert "early stop off)" in scorer and "early stop off)" in gpt and "4/0" not in scorer + gpt
