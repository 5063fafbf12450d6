"""New theorems of seen subjects: the goal lines of a model's own validation theorems.

The real-prover bench judges a model on two splits. The first is a held-out
subject (a folder of acornlib modules the model never saw). The second, built
here, is what a user mostly asks of the prover: **new theorems in subjects the
model has seen** — goals of the model's own validation theorems, in modules
whose other theorems it trained on.

Where each piece comes from:

* **Which theorems are validation**: the trainer's split (`gpt/data.py`): a file
  is validation when `is_validation_key(file.theorem_key(), val_fraction)`; the
  model's `val_fraction` and `split` are in its export's `config.json` or its
  checkpoint's config (`model_split`). A model split by module has no new
  theorem of a seen subject (its validation is whole modules), so it is refused.
* **Where a proof file's goal is**: the `manifest.jsonl` that `tactics import
  acornlib` writes beside the data folder: per file, its source module
  (`src/nat/nat_base.ac`, acorn's module `nat.nat_base`), the first source line
  of its goal (`src_line`, 1-based: what `acorn reprove MODULE:LINE` takes) and
  how the importer placed it (`method`). Files placed by position only
  (`order`) or not at all (`unlocated`) are left out: their line is a guess.
* **A goal line**: acorn's judge runs one process per goal line, which searches
  every goal starting on that line. A line is a candidate when validation files
  sit on it, no training file does, no training file of its module has the same
  goal text (an induction step such as `p(0)` recurs across theorems), and its
  module holds training files (a seen subject).
* **The sample** is seeded and stable: modules are dealt in an order drawn from
  the seed (`data.stable_share` of seed and module), each module's lines in an
  order drawn the same way, and lines are taken one per module in turn until
  `size` are taken: the sample spreads over as many modules as it can, and the
  same data and seed give the same sample on every machine (no `random`, no
  file-order dependence).

Only the judge's callers import this module's results into acorn
(`generative_judge.prove_modules(..., choose=sample.choose)`); it imports no judge.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tactics_core.acorn.types import module_name as source_module_name
from tactics_core.common.errors import TacticsError
from tactics_core.common.manifest import manifest_path, read_manifest_rows
from tactics_core.common.progress import CancelToken, ProgressFn, report
from tactics_core.common.workspace import MANIFEST_FILE

SEEN_GOALS = 120  # the bench's default sample: ~360 acorn processes with two models and saturation
SPLIT_NAME = "new theorems of seen subjects"
UNSURE_METHODS = ("order", "unlocated")  # placements whose source line is a guess (records.METHODS)


@dataclass(frozen=True)
class GoalLine:
    """One line of one module on which validation goals start: what `reprove MODULE:LINE` runs."""

    module: str  # acorn's module name: nat.nat_base
    line: int  # 1-based source line
    files: tuple[str, ...]  # the validation proof files placed on it
    goals: tuple[str, ...]  # their certificates' goal names (acorn's listing names them so)

    @property
    def target(self) -> str:
        return f"{self.module}:{self.line}"

    def to_dict(self) -> dict:
        return {"module": self.module, "line": self.line, "files": list(self.files), "goals": list(self.goals)}


@dataclass
class GoalSample:
    """A seeded sample of goal lines of validation theorems in modules the model trained on."""

    data_dir: str
    seed: int
    size: int  # asked for
    val_fraction: float
    split: str
    lines: list[GoalLine] = field(default_factory=list)  # sorted by module, then line
    files: int = 0  # proof files read
    training_files: int = 0
    validation_files: int = 0
    validation_theorems: int = 0
    candidate_lines: int = 0  # goal lines the sample is drawn from
    candidate_modules: int = 0
    unsure_files: int = 0  # validation files left out: placed by position or not at all
    shared_lines: int = 0  # validation lines left out: a training goal starts on them too
    unseen_files: int = 0  # validation files left out: their module holds no training file
    # What the judge met: goal lines acorn lists no goal on, or on which it lists a training goal.
    unlisted: list[str] = field(default_factory=list)
    training_names: dict[str, frozenset] = field(default_factory=dict, repr=False)  # per sampled module

    @property
    def modules(self) -> list[str]:
        return sorted({g.module for g in self.lines})

    def by_module(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for g in self.lines:
            out[g.module].append(g.line)
        return dict(out)

    def choose(self, module: str, listed: Sequence[Any]) -> list[Any]:
        """The goals of acorn's listing of `module` (`Goal`s: name, line) that this sample judges.

        A sampled line on which acorn lists no goal (the data was imported from
        another acornlib than acorn reads) or a goal a training file of the
        module names is left out whole (acorn searches every goal of a line in
        one process) and recorded in `unlisted`.
        """
        wanted = set(self.by_module().get(module, ()))
        names = self.training_names.get(module, frozenset())
        on_line: dict[int, list[Any]] = defaultdict(list)
        for goal in listed:
            if goal.line in wanted:
                on_line[goal.line].append(goal)
        chosen: list[Any] = []
        for line in sorted(wanted):
            goals = on_line.get(line, [])
            why = None
            if not goals:
                why = "acorn lists no goal there"
            elif any(g.name in names for g in goals):
                why = "acorn lists a goal of a training file there"
            if why is None:
                chosen.extend(goals)
            elif f"{module}:{line} ({why})" not in self.unlisted:  # each prover's run asks again
                self.unlisted.append(f"{module}:{line} ({why})")
        return chosen

    def summary(self) -> str:
        """One line: what the sample is and what it was drawn from."""
        return (
            f"{SPLIT_NAME}: {len(self.lines)} goal lines of {len(self.modules)} modules (seed {self.seed}), drawn from "
            f"{self.candidate_lines:,} goal lines of {self.candidate_modules} modules: the validation theorems "
            f"({self.validation_theorems:,} theorems, {self.validation_files:,} of {self.files:,} files; split by "
            f"{self.split}, val_fraction {self.val_fraction:g}) of {self.data_dir}"
        )

    def to_dict(self) -> dict:
        keys = ("data_dir", "seed", "size", "val_fraction", "split", "files", "training_files", "validation_files",
                "validation_theorems", "candidate_lines", "candidate_modules", "unsure_files", "shared_lines",
                "unseen_files", "unlisted")
        return {"split_name": SPLIT_NAME, **{k: getattr(self, k) for k in keys}, "modules": self.modules,
                "lines": [g.to_dict() for g in self.lines]}


def read_manifest(data_dir: Path) -> dict[str, dict]:
    """{proof file name: its manifest row}; one-line errors when there is no provenance."""
    rows = read_manifest_rows(data_dir, ("module", "src_line"), (
        f"{data_dir} has no {MANIFEST_FILE} beside it: {SPLIT_NAME} needs each file's module and goal line, "
        "which `tactics import acornlib` writes there; import the corpus with it"))
    if not rows:
        raise TacticsError(f"{manifest_path(data_dir)} is empty: no file's provenance; import the corpus "
                           "again with `tactics import acornlib`")
    return {name: {"module": row["module"], "src_line": row["src_line"], "method": row.get("method"),
                   "goal": row.get("goal")} for name, row in rows.items()}


def _order(seed: int, *parts: object) -> float:
    from tactics_core.gpt.data import stable_share

    return stable_share("\0".join(map(str, (seed, *parts))))


def seen_subject_goals(
    data_dir: str | os.PathLike,
    size: int = SEEN_GOALS,
    seed: int = 0,
    val_fraction: float | None = None,
    split: str = "theorem",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> GoalSample:
    """A seeded sample of `size` goal lines (fewer when fewer exist) of the validation theorems of
    `data_dir` (the corpus a model trained on, split as it was: `val_fraction`, `split`), spread
    over the modules the model trained on; never a line on which a training file's goal starts."""
    from tactics_core.gpt.data import DEFAULT_VAL_FRACTION

    data_dir = Path(data_dir)
    val_fraction = DEFAULT_VAL_FRACTION if val_fraction is None else float(val_fraction)
    _check_request(data_dir, size, split)
    rows = read_manifest(data_dir)
    sample = GoalSample(str(data_dir), seed, size, val_fraction, split)
    report(progress, 0, None, f"reading {data_dir} and its {MANIFEST_FILE}")
    corpus = _read_split(data_dir, rows, sample, val_fraction, cancel)
    by_module = _candidate_lines(corpus, sample, data_dir)
    sample.lines = sorted(_deal(by_module, seed, size), key=lambda g: (g.module, g.line))
    for g in sample.lines:  # the promise of this split, checked on what is returned
        if (g.module, g.line) in corpus.training_lines or set(g.goals) & corpus.training_names[g.module]:
            raise AssertionError(f"{g.target} is a goal line of a training file")
    sample.training_names = {m: frozenset(corpus.training_names[m]) for m in sample.modules}
    report(progress, 1, 1, sample.summary())
    return sample


def _check_request(data_dir: Path, size: int, split: str) -> None:
    """One line for a request this split cannot answer, before any file is read."""
    if size < 1:
        raise TacticsError(f"the sample of {SPLIT_NAME} needs at least 1 goal line (got {size})")
    if split == "module":
        raise TacticsError(
            f"the model was split by module (training.split = \"module\"): its validation theorems are whole modules "
            f"it never saw, so it has no {SPLIT_NAME}; judge it on a held-out subject (--module) instead"
        )
    if split != "theorem":
        raise TacticsError(f"unknown split {split!r} (theorem or module)")
    if not data_dir.is_dir():
        raise TacticsError(f"data folder {data_dir} not found; give the folder the model was trained on")


@dataclass
class _SplitCorpus:
    """What one pass over the corpus learns: where the training goals are, and the validation
    files placed surely, by (module, line)."""

    training_lines: set[tuple[str, int]] = field(default_factory=set)
    training_names: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    training_modules: set[str] = field(default_factory=set)
    candidates: dict[tuple[str, int], list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))


def _read_split(data_dir: Path, rows: dict[str, dict], sample: GoalSample, val_fraction: float,
                cancel: CancelToken | None) -> _SplitCorpus:
    """Every file of the corpus on its side of the model's split, counted into `sample`."""
    from tactics_core.gpt.corpus import iter_corpus
    from tactics_core.gpt.data import is_validation_key

    corpus = _SplitCorpus()
    theorems: set[str] = set()
    missing: list[str] = []
    for pf in iter_corpus(data_dir, cancel=cancel):
        sample.files += 1
        row = rows.get(pf.name)
        if row is None:
            missing.append(pf.name)
            continue
        module = source_module_name(str(row["module"]))
        line = row["src_line"]
        key = pf.theorem_key()
        if not is_validation_key(key, val_fraction):
            sample.training_files += 1
            corpus.training_modules.add(module)
            if line is not None:
                corpus.training_lines.add((module, int(line)))
            if row["goal"] is not None:
                corpus.training_names[module].add(str(row["goal"]))
            continue
        sample.validation_files += 1
        theorems.add(key)
        if line is None or row["method"] in UNSURE_METHODS:
            sample.unsure_files += 1
            continue
        corpus.candidates[(module, int(line))].append((pf.name, str(row["goal"])))
    if missing:
        raise TacticsError(
            f"{len(missing):,} files of {data_dir} are not in {manifest_path(data_dir)} (first: {missing[0]}); "
            f"the manifest is of another import: import the corpus again"
        )
    sample.validation_theorems = len(theorems)
    if not sample.validation_files:
        raise TacticsError(
            f"{data_dir}: no validation theorem (val_fraction {val_fraction:g} of {sample.files:,} files); "
            f"{SPLIT_NAME} needs a corpus with validation theorems"
        )
    return corpus


def _candidate_lines(corpus: _SplitCorpus, sample: GoalSample, data_dir: Path) -> dict[str, list[GoalLine]]:
    """{module: its candidate goal lines}: in a seen module, no training goal on the line or
    of the same goal text in the module."""
    by_module: dict[str, list[GoalLine]] = defaultdict(list)
    for (module, line), placed in corpus.candidates.items():
        if module not in corpus.training_modules:
            sample.unseen_files += len(placed)
            continue
        goals = tuple(dict.fromkeys(goal for _, goal in placed))
        if (module, line) in corpus.training_lines or any(g in corpus.training_names[module] for g in goals):
            sample.shared_lines += 1
            continue
        by_module[module].append(GoalLine(module, line, tuple(name for name, _ in placed), goals))
    sample.candidate_lines = sum(len(v) for v in by_module.values())
    sample.candidate_modules = len(by_module)
    if not by_module:
        raise TacticsError(
            f"{data_dir}: none of its {sample.validation_files:,} validation files is a goal line of a seen module "
            f"({sample.unsure_files} placed by position only, {sample.shared_lines} lines shared with a training "
            f"goal, {sample.unseen_files} in modules with no training file); {SPLIT_NAME} needs more data"
        )
    return by_module


def _deal(by_module: dict[str, list[GoalLine]], seed: int, size: int) -> list[GoalLine]:
    """Modules in a seeded order, one line each in turn, each module's lines in a seeded order."""
    queues = {m: sorted(lines, key=lambda g: (_order(seed, m, g.line), g.line)) for m, lines in by_module.items()}
    order = sorted(queues, key=lambda m: (_order(seed, m), m))
    chosen: list[GoalLine] = []
    depth = 0
    while len(chosen) < size and any(len(queues[m]) > depth for m in order):
        for m in order:
            if len(chosen) >= size:
                break
            if len(queues[m]) > depth:
                chosen.append(queues[m][depth])
        depth += 1
    return chosen


def model_split(model: str | os.PathLike) -> tuple[float, str]:
    """(val_fraction, split) a model was trained with: from an export folder's config.json, or a checkpoint."""
    from tactics_core.gpt.data import DEFAULT_VAL_FRACTION

    path = Path(model)
    if path.is_dir():
        from tactics_core.gpt.complete import EXPORT_CONFIG_FILE

        config_path = path / EXPORT_CONFIG_FILE
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TacticsError(f"{config_path} is not readable ({exc}); export the checkpoint again") from None
        if not isinstance(config, dict):
            raise TacticsError(f"{config_path} is not an export's config; export the checkpoint again")
        return float(config.get("val_fraction", DEFAULT_VAL_FRACTION)), str(config.get("split", "theorem"))
    if path.is_file():
        from tactics_core.runs.checkpoints import load_checkpoint

        payload = load_checkpoint(path)
        training = (payload.get("config") or {}).get("training") or {}
        return float(training.get("val_fraction", DEFAULT_VAL_FRACTION)), str(training.get("split", "theorem"))
    raise TacticsError(f"model {path} not found; give an export folder or a checkpoint .pt")


__all__ = ["GoalLine", "GoalSample", "SEEN_GOALS", "SPLIT_NAME", "model_split", "read_manifest", "seen_subject_goals"]
