"""Today's acorn as the judge of a scorer: `acorn eval` of acorn 0.2.6 (91f29ff1).

acorn's saturation prover orders its clause activations with a scorer, an
ONNX MLP whose inputs are named by a `X.features.json` beside `X.onnx`.
`acorn eval` searches every goal that has a cached proof again, with a
policy (`--policy model --model X.onnx`, the embedded default scorer,
`depth-first`, ...), and prints a failure line per failed search plus a
summary. This module drives that command (docs: acorn's src/bin/acorn.rs,
`Command::Eval`, and src/builder.rs for the words it prints):

* **Buckets.** acorn puts every goal into one of 100 stable buckets
  (`--eval-sample 0-4,90-94`); 90-99 are its validation buckets. One acorn
  process per bucket keeps a run resumable and lets a judge interleave
  policies, so a change of machine load hits each policy alike. Loading the
  library takes seconds; the searches take the time.
* **In place.** `acorn eval` writes nothing into the acornlib (its build
  cache is read only: `write_cache: false`; checked by mtime after a run), so
  it runs on the user's checkout, with the checkout as its working folder.
* **Traces.** `--trace-out T.jsonl.zst` is a zstd stream finished only when
  acorn exits normally (a killed acorn leaves a truncated file); acorn writes
  `T.meta.json` (its feature catalog) as soon as the trace opens, before it
  even looks for the library. `collect_traces` lets acorn write into a
  hidden temp folder and renames the files only after a normal exit.
* **Exit codes** (recorded in tests/fixtures/acorn_eval_91f29ff1/outputs):
  0 both for "Evaluation succeeded." and "Evaluation completed with failed
  searches."; 1 with an `Error: ...` line for a bad flag, model or target;
  2 for clap's `error: ...` (an unknown subcommand: an older acorn).

No torch here: acorn does all the inference.

The package, one concept per module: `setup` (which acorn and acornlib, its policies and
buckets), `exports` (the scorer exports acorn loads, checked), `run` (one `acorn eval`),
`collect` (traces, one bucket at a time), `judge` (a scorer against the baselines). This
`__init__` re-exports their public names: `tactics_core.acorn.eval_judge` is what the CLI,
the TUI and the tests import.
"""

from tactics_core.scorer.buckets import format_buckets
from tactics_core.scorer.contract import FEATURE_CONTRACT_SCHEMA, features_path

from .collect import CollectedBucket, bucket_files, bucket_stem, collect_traces
from .exports import (
    check_one_file, check_policy, check_scorer_export, feature_catalog, find_scorer_onnx, is_scorer_export,
    policy_label, read_feature_catalog, scorer_label, scorer_onnx,
)
from .judge import BucketFigures, JudgeReport, PolicyFigures, judge, report_text
from .run import (
    EvalResult, EvalRun, FailedSearch, LineFn, SkipFigures, eval_error, parse_eval_output, parse_failure_line, run_eval,
)
from .setup import (
    BASELINES, BUCKETS, DEFAULT_POLICY, DEFAULT_TIMEOUT, ENV_EVAL_ACORNLIB, ENV_EVAL_BINARY, EVAL_ACORNLIB_COMMIT,
    EVAL_COMMIT, EVAL_RELEASE, KILL_GRACE, LOG_SUFFIX, META_SUFFIX, MODEL_POLICIES, POLICIES, SETTINGS_TABLE,
    SHORT_LABELS, SUMMARY_SUFFIX, TRACE_SCHEMA, TRACE_SUFFIX, TRACES_DIR, VALIDATION_BUCKETS, check_eval_acornlib,
    check_eval_binary, parse_buckets, read_eval_settings, resolve_eval_setup,
)

__all__ = [
    "EVAL_COMMIT", "EVAL_RELEASE", "EVAL_ACORNLIB_COMMIT", "ENV_EVAL_BINARY", "ENV_EVAL_ACORNLIB", "SETTINGS_TABLE",
    "DEFAULT_POLICY", "POLICIES", "MODEL_POLICIES", "BASELINES", "VALIDATION_BUCKETS", "TRACES_DIR",
    "read_eval_settings", "resolve_eval_setup", "check_eval_acornlib", "check_eval_binary",
    "parse_buckets", "format_buckets", "features_path", "find_scorer_onnx", "scorer_onnx", "is_scorer_export", "scorer_label",
    "read_feature_catalog", "feature_catalog", "check_scorer_export", "check_policy", "policy_label",
    "EvalRun", "EvalResult", "FailedSearch", "SkipFigures", "parse_eval_output", "parse_failure_line", "eval_error",
    "run_eval", "CollectedBucket", "bucket_files", "collect_traces",
    "BucketFigures", "PolicyFigures", "JudgeReport", "judge", "report_text",
    "BUCKETS", "DEFAULT_TIMEOUT", "FEATURE_CONTRACT_SCHEMA", "KILL_GRACE", "LOG_SUFFIX", "META_SUFFIX", "SHORT_LABELS",
    "SUMMARY_SUFFIX", "TRACE_SCHEMA", "TRACE_SUFFIX", "LineFn", "bucket_stem", "check_one_file",
]
