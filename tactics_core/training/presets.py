"""Training presets: a `[model]` and a `[training]` section in a TOML file (and, for a scorer, `[data]`).

A preset is the whole recipe of a run, so it is validated completely when it
is loaded (syntax with line and column, unknown keys with the closest valid
name, types, ranges): a typo must fail in the first second, not after an hour
of training. Built-in presets ship inside the package
(`tactics_core.builtin_presets`, the top-level `presets/` folder of a
checkout); a workspace's own `presets/NAME.toml` shadows the built-in of the
same name. Key names are the original scripts' where they had one.

The one-line `description` and the model `kind` are top-level keys of the file:
`kind = "gpt"` (the default: the generative tactics GPT, sections `[model]` and
`[training]`) or `kind = "scorer"` (acorn's proof-step scorer: `[model]` its MLP,
`[data]` its trace rows, `[training]` the keys it reads, with its own defaults). A
kind's sections are `kind_sections(kind)`. `vocab_size` is not part of a preset: it
comes from the tokenizer.

Why one module over 600 lines: a key is declared once (`_key`, its default and its doc), and
loading, validation, `--set` and the Presets form's edits, and the TOML writer all read those
declarations; split, each new key would touch four modules. The sections are marked by banners.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tactics_core.gpt.holdout import DEFAULT_VAL_FRACTION, SPLITS
from tactics_core.common.errors import TacticsError
from tactics_core.gpt.layouts import DEFAULT_LAYOUT, LAYOUTS, layout_named
from tactics_core.gpt.model_config import GPTConfig
from tactics_core.scorer.settings import (
    BATCHES as SCORER_BATCHES, SELECT_BY as SCORER_SELECT_BY, LOSSES as SCORER_LOSSES, TRAINING_DEFAULTS as SCORER_TRAINING_DEFAULTS,
    TRAINING_DOCS as SCORER_TRAINING_DOCS, TRAINING_KEYS as SCORER_TRAINING_KEYS, ScorerDataSection, ScorerModelSection,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_PRESETS_DIR = Path("presets")
DEFAULT_PRESET = "default"
DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class PresetError(TacticsError):
    """A preset that does not validate, and the key it is about.

    `key` is `section.key` as the file spells it (None when the trouble is not
    one key's: TOML syntax, a file that is not a table); `reason` says what is
    wrong and what is allowed; `label` is where the preset came from (its file,
    its name, or the `--set` item); `note` names the overrides a value may come
    from. str() is the one line every handler shows (`label: reason (note)`),
    so catching TacticsError still works; the Presets form shows `reason` next
    to the field of `key`, with no parsing of the line.
    """

    def __init__(self, key: str | None, reason: str, label: str = "", note: str = "") -> None:
        self.key, self.reason, self.label, self.note = key, reason, label, note
        line = f"{label}: {reason}" if label else reason
        super().__init__(f"{line} ({note})" if note else line)

    def __reduce__(self):  # pickled (e.g. across processes) with its parts, not just the line
        return (type(self), (self.key, self.reason, self.label, self.note))


def _key(default: Any, doc: str) -> Any:
    """A preset key: its default and the line that documents it.

    The doc is the comment `dumps_preset` writes after the value (and so what
    the TUI's preset view shows) and the keys table of docs/presets.md.
    """
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


_GPT = GPTConfig()  # the model's own defaults (importable without torch)


@dataclass
class ModelSection:
    """Model shape (the GPT of `tactics_core.gpt.model`); the defaults are GPTConfig's."""

    d_model: int = _key(_GPT.d_model, "width of the residual stream (embedding size); must be divisible by n_heads")
    n_layers: int = _key(_GPT.n_layers, "number of transformer blocks")
    n_heads: int = _key(_GPT.n_heads, "attention heads per block (head size = d_model / n_heads)")
    context_length: int = _key(_GPT.context_length, "longest token window the model sees (prompt + proof so far)")
    dropout: float = _key(_GPT.dropout, "dropout probability while training, 0 <= dropout < 1 (0 = off)")

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        """The `GPTConfig` for this shape and a tokenizer's vocabulary size."""
        return GPTConfig(vocab_size=vocab_size, **dataclasses.asdict(self))


@dataclass
class TrainingSection:
    """Optimisation, evaluation, checkpointing and hardware settings."""

    batch_size: int = _key(32, "sequences per optimizer micro-batch")
    learning_rate: float = _key(3e-4, "peak AdamW learning rate, reached after warmup")
    min_lr: float = _key(3e-5, "learning rate at the end of the cosine decay (<= learning_rate)")
    warmup_steps: int = _key(1000, "steps of linear warmup from 0 to learning_rate")
    weight_decay: float = _key(0.1, "AdamW weight decay (matrices only)")
    betas: list[float] = _key([0.9, 0.95], "AdamW beta1, beta2, each in [0, 1)")
    grad_clip: float = _key(1.0, "clip the gradient norm to this value (0 = no clipping)")
    grad_accum_steps: int = _key(1, "micro-batches accumulated per optimizer step")
    epochs: int = _key(10, "passes over the training split (used when max_steps = 0)")
    max_steps: int = _key(0, "optimizer steps to train; 0 = derive from epochs")
    eval_interval: int = _key(500, "evaluate on the validation split every N steps")
    eval_batches: int = _key(0, "validation batches per evaluation; 0 = the whole validation split")
    save_interval: int = _key(1000, "write a periodic checkpoint_step_N.pt every N steps")
    keep_checkpoints: int = _key(3, "periodic checkpoints kept (the last K, plus best_model.pt); 0 = keep all")
    patience: int = _key(10, "stop after this many evaluations without a better validation loss; 0 = never")
    val_fraction: float = _key(DEFAULT_VAL_FRACTION, "share of theorems (or modules) held out for validation, 0 < f < 1")
    split: str = _key(
        "theorem",
        "theorem | module: hold out whole theorems, or whole acornlib modules (new theories; needs the "
        "manifest.jsonl that `tactics import acornlib` writes beside the data folder)",
    )
    seed: int = _key(1337, "random seed (weights, data order, dropout)")
    device: str = _key("auto", "auto | cpu | cuda | cuda:N | mps (auto = cuda, then mps, then cpu)")
    num_threads: int = _key(0, "CPU threads for torch; 0 = automatic")
    precision: str = _key(
        "auto",
        "auto | fp32 | bf16: matmuls in bfloat16 autocast (weights stay fp32); auto = bf16 on CUDA GPUs "
        "with bf16, fp32 elsewhere (CPUs gain nothing from it at 2 threads)",
    )
    sample_interval: int = _key(0, "print a sample completion every N steps; 0 = with each evaluation")
    optimizer: str = _key("adamw", "adamw | muon (Muon for the block matrices, AdamW for embeddings and norms)")
    muon_lr: float = _key(0.02, "peak learning rate of the Muon matrices (optimizer = muon); follows the same schedule")
    layout: str = _key(DEFAULT_LAYOUT, " | ".join(f"{name} ({layout_named(name).summary})" for name in LAYOUTS))
    rename_variants: int = _key(
        0,
        "copies of each training file with its bound variables renamed, added to the training split "
        "(0 = off); the validation split is never changed",
    )
    context_weight: float = _key(1.0, "loss weight of prompt tokens, 0 <= w <= 1 (proof-line tokens weigh 1)")
    context_sampling: bool = _key(
        False,
        "true: score a random share context_weight of the prompt tokens at weight 1 instead of all of "
        "them at context_weight (the same loss in expectation; the output layer runs on fewer positions)",
    )
    select_by: str = _key("proof_loss", "proof_loss | val_loss: what picks best_model.pt and drives early stopping")


def key_doc(section: str, key: str, kind: str = "gpt") -> str:
    """The one-line documentation of `section.key` (written next to its definition)."""
    if kind == "scorer" and section == "training" and key in SCORER_TRAINING_DOCS:
        return SCORER_TRAINING_DOCS[key]
    return next(f.metadata["doc"] for f in dataclasses.fields(kind_sections(kind)[section]) if f.name == key)


OPTIMIZERS = ("adamw", "muon")
PRECISIONS = ("auto", "fp32", "bf16")
SELECT_BY = ("proof_loss", "val_loss")

SECTIONS: dict[str, type] = {"model": ModelSection, "training": TrainingSection}  # the GPT's
KINDS = ("gpt", "scorer")
_SCORER_SECTIONS: dict[str, type] = {"model": ScorerModelSection, "data": ScorerDataSection, "training": TrainingSection}
TOP_LEVEL_KEYS = ("description", "kind")


def kind_sections(kind: str) -> dict[str, type]:
    """The sections of a preset of this model kind, in the order files write them."""
    return _SCORER_SECTIONS if kind == "scorer" else SECTIONS


def _section_keys(kind: str, section: str) -> list[str]:
    """The keys a preset of `kind` has in `section` (a scorer's [training] leaves out the GPT's keys)."""
    keys = [f.name for f in dataclasses.fields(kind_sections(kind)[section])]
    if kind == "scorer" and section == "training":
        keys = [k for k in keys if k in SCORER_TRAINING_KEYS]
    return keys


@dataclass
class Preset:
    """A named, validated training recipe and where it came from."""

    name: str
    model: ModelSection | ScorerModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    source: Path | None = None
    builtin: bool = False
    description: str = ""
    # Leading comment lines of the file it was loaded from, kept by dumps_preset.
    header: str = ""
    kind: str = "gpt"  # which model it trains: "gpt" or "scorer" (KINDS)
    data: ScorerDataSection | None = None  # the scorer's [data]; None for a GPT

    def to_dict(self) -> dict[str, Any]:
        return preset_to_dict(self)

    @property
    def label(self) -> str:
        """How messages name this preset: its file, or its name."""
        return str(self.source) if self.source else f"preset {self.name!r}"


@dataclass
class PresetInfo:
    """One row of `tactics presets ls`."""

    name: str
    path: Path
    builtin: bool
    shadows: bool  # a workspace preset hiding the built-in of the same name
    description: str = ""
    active: bool = True  # False for a built-in that a workspace preset shadows
    error: str | None = None  # a workspace preset that does not load


# ----------------------------------------------------------------------------
# Locations


def builtin_presets_dir() -> Path:
    """The folder of the built-in presets, in a checkout or an installed wheel."""
    from importlib import resources

    return Path(str(resources.files("tactics_core.builtin_presets")))


def _builtin_files() -> dict[str, Path]:
    folder = builtin_presets_dir()
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def _user_files(presets_dir: Path) -> dict[str, Path]:
    presets_dir = Path(presets_dir)
    if not presets_dir.is_dir():
        return {}
    try:
        if presets_dir.resolve() == builtin_presets_dir().resolve():
            return {}  # running inside a checkout: the built-ins are not user presets
    except OSError:
        pass
    return {p.stem: p for p in sorted(presets_dir.glob("*.toml")) if not p.name.startswith(".")}


def list_presets(presets_dir: str | Path = DEFAULT_PRESETS_DIR) -> list[PresetInfo]:
    """Built-in and workspace presets, sorted by name (built-in first on a tie).

    A broken workspace preset is listed with `error` set rather than hiding
    the others.
    """
    builtins = _builtin_files()
    users = _user_files(Path(presets_dir))
    infos: list[PresetInfo] = []
    for name, path in builtins.items():
        info = PresetInfo(name, path, True, False, active=name not in users)
        try:
            info.description = _load_file(path, builtin=True).description
        except TacticsError as exc:  # pragma: no cover - the built-ins are tested
            info.error = str(exc)
        infos.append(info)
    for name, path in users.items():
        info = PresetInfo(name, path, False, name in builtins)
        try:
            info.description = _load_file(path, builtin=False).description
        except TacticsError as exc:
            info.error = str(exc)
        infos.append(info)
    infos.sort(key=lambda i: (i.name, not i.builtin))
    return infos


def _available_names(presets_dir: Path) -> list[str]:
    return sorted(set(_builtin_files()) | set(_user_files(presets_dir)))


def resolve_preset_path(name_or_path: str | Path, presets_dir: str | Path = DEFAULT_PRESETS_DIR) -> tuple[Path, bool]:
    """(file, is_builtin) for a preset name or a path to a .toml file."""
    presets_dir = Path(presets_dir)
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml")
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise TacticsError(
                f"preset file not found: {path} (list the presets with `tactics presets ls`)"
            )
        try:
            builtin = path.resolve().parent == builtin_presets_dir().resolve()
        except OSError:
            builtin = False
        return path, builtin
    users = _user_files(presets_dir)
    if text in users:
        return users[text], False
    builtins = _builtin_files()
    if text in builtins:
        return builtins[text], True
    available = _available_names(presets_dir)
    close = difflib.get_close_matches(text, available, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TacticsError(
        f"unknown preset {text!r}: {hint}available: {', '.join(available)} "
        f"(or give a path to a .toml file)"
    )


def load_preset(name_or_path: str | Path, presets_dir: str | Path = DEFAULT_PRESETS_DIR) -> Preset:
    """Load and validate a preset by name (workspace first, then built-in) or path."""
    path, builtin = resolve_preset_path(name_or_path, presets_dir)
    return _load_file(path, builtin=builtin)


def _load_file(path: Path, builtin: bool) -> Preset:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(None, f"cannot read preset ({exc.__class__.__name__}: {exc})", str(path)) from exc
    preset = loads_preset(text, source=path, name=path.stem)
    preset.builtin = builtin
    return preset


def loads_preset(text: str, source: Path | None = None, name: str = "preset") -> Preset:
    """Parse and validate preset TOML text; errors name `source` (or the preset name)."""
    label = str(source) if source else f"preset {name!r}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(None, f"{_toml_error(exc)}; fix the TOML syntax there", label) from exc
    preset = preset_from_dict(data, source=source, name=name)
    preset.header = _leading_comments(text)
    return preset


def _toml_error(exc: Exception) -> str:
    """'line 3, column 7: Invalid value' from tomllib's 'Invalid value (at line 3, column 7)'."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid TOML"
    match = re.match(r"^(.*?)\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if match:
        return f"line {match.group(2)}, column {match.group(3)}: {match.group(1)}"
    match = re.match(r"^(.*?)\s*\(at end of document\)\s*$", message)
    if match:
        return f"at the end of the file: {match.group(1)}"
    return message


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif line.strip() == "" and lines:
            break
        elif line.strip() == "":
            continue
        else:
            break
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Validation


def _all_keys(kind: str = "gpt") -> dict[str, str]:
    """key -> section, for suggestions across sections."""
    return {key: section for section in kind_sections(kind) for key in _section_keys(kind, section)}


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return close[0] if close else ""


def _unknown_key(label: str, section: str | None, key: str, kind: str = "gpt") -> PresetError:
    """'unknown key training.batchsize (did you mean training.batch_size?)'."""
    all_keys = _all_keys(kind)
    sections = kind_sections(kind)
    where = f"{section}.{key}" if section else key
    if kind == "scorer" and section == "training" and key in _section_keys("gpt", "training"):
        return PresetError(where, f"{where} is a key of the GPT's presets; a scorer preset does not take it (remove it)", label)
    if key in all_keys and all_keys[key] != section:
        return PresetError(
            where,
            f"key {where} belongs in the [{all_keys[key]}] section (move it there as {all_keys[key]}.{key})",
            label,
        )
    if section is None:
        options = list(sections) + list(TOP_LEVEL_KEYS)
        best = _suggest(key, options)
        if not best:
            best_key = _suggest(key, all_keys)
            best = f"{all_keys[best_key]}.{best_key}" if best_key else ""
        valid = f"sections {', '.join(f'[{name}]' for name in sections)} and the keys description, kind"
    else:
        keys = _section_keys(kind, section)
        best_key = _suggest(key, keys)
        if not best_key:  # maybe it is another section's key, misspelt
            other = _suggest(key, all_keys)
            best = f"{all_keys[other]}.{other}" if other else ""
        else:
            best = f"{section}.{best_key}"
        valid = f"valid keys in [{section}]: {', '.join(keys)}"
    hint = f"did you mean {best}?" if best else valid
    return PresetError(where, f"unknown key {where} ({hint})", label)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _coerce(label: str, section: str, key: str, value: Any, default: Any) -> Any:
    """Check the type of one value against its default's type; int is fine for a float."""
    where = f"{section}.{key}"

    def wrong(reason: str) -> PresetError:
        return PresetError(where, f"{where} {reason}", label)

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong(f"must be true or false, got {_type_name(value)} ({value!r})")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise wrong(f"must be an integer, got the float {value!r} (write {int(value)})")
            raise wrong(f"must be an integer, got {_type_name(value)} ({value!r})")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong(f"must be a number, got {_type_name(value)} ({value!r})")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise wrong(f'must be a string (in quotes, e.g. "{default}"), got {_type_name(value)} ({value!r})')
        return value
    if isinstance(default, list) and (not default or isinstance(default[0], str)):  # a list of names
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise wrong(f'must be a list of names like ["is_assumption", "atom_count"], got {value!r}')
        return list(value)
    if isinstance(default, list):
        if (
            not isinstance(value, list)
            or len(value) != len(default)
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
        ):
            raise wrong(f"must be a list of {len(default)} numbers like {default!r}, got {value!r}")
        return [float(v) for v in value]
    raise PresetError(where, f"{where}: unsupported value {value!r}", label)  # pragma: no cover


def preset_from_dict(
    data: dict[str, Any],
    source: Path | None = None,
    name: str = "preset",
    builtin: bool = False,
) -> Preset:
    """Build a validated `Preset` from parsed TOML; missing keys take defaults (a scorer's
    [training] takes `scorer.settings.TRAINING_DEFAULTS` first)."""
    label = str(source) if source else f"preset {name!r}"
    if not isinstance(data, dict):
        raise PresetError(None, "a preset must be a TOML table", label)
    kind = data.get("kind", "gpt")
    if kind not in KINDS:
        raise PresetError("kind", f"kind must be one of {', '.join(KINDS)}, got {kind!r}", label)
    section_types = kind_sections(kind)
    sections: dict[str, Any] = {}
    description = ""
    for key, value in data.items():
        if key in section_types:
            if not isinstance(value, dict):
                raise PresetError(key, f"{key} must be a section [{key}], got {_type_name(value)}", label)
            continue
        if key == "kind":
            continue
        if key == "description":
            if not isinstance(value, str):
                raise PresetError(key, f"description must be a string, got {_type_name(value)}", label)
            description = value
            continue
        raise _unknown_key(label, None, key, kind)
    for section, cls in section_types.items():
        raw = data.get(section, {})
        defaults = cls()
        allowed = set(_section_keys(kind, section))
        values: dict[str, Any] = {}
        if kind == "scorer" and section == "training":
            values.update(SCORER_TRAINING_DEFAULTS)
        for key, value in raw.items():
            if not hasattr(defaults, key) or key not in allowed:
                raise _unknown_key(label, section, key, kind)
            if isinstance(value, dict):
                raise PresetError(f"{section}.{key}", f"{section}.{key} must be a value, not a table", label)
            values[key] = _coerce(label, section, key, value, getattr(defaults, key))
        sections[section] = cls(**values)
    preset = Preset(
        name=name,
        model=sections["model"],
        training=sections["training"],
        source=Path(source) if source else None,
        builtin=builtin,
        description=description,
        kind=kind,
        data=sections.get("data"),
    )
    validate(preset)
    return preset


def validate(preset: Preset) -> None:
    """Check types and ranges; raise a PresetError naming the file and the key."""
    label = preset.label
    if preset.kind not in KINDS:
        raise PresetError("kind", f"kind must be one of {', '.join(KINDS)}, got {preset.kind!r}", label)
    # Types first (a Preset built in code may hold anything).
    for section, cls in kind_sections(preset.kind).items():
        obj = getattr(preset, section)
        defaults = cls()
        for f in dataclasses.fields(cls):
            setattr(obj, f.name, _coerce(label, section, f.name, getattr(obj, f.name), getattr(defaults, f.name)))

    def fail(key: str, rule: str, value: Any) -> None:
        raise PresetError(key, f"{key} {rule}, got {value!r}", label)

    if preset.kind == "scorer":
        _validate_training(preset, fail)
        _validate_scorer(preset, fail)
        return
    m, t = preset.model, preset.training
    for key in ("d_model", "n_layers", "n_heads", "context_length"):
        if getattr(m, key) < 1:
            fail(f"model.{key}", "must be >= 1", getattr(m, key))
    if m.d_model % m.n_heads:
        raise PresetError(
            "model.d_model",
            f"model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads}); "
            f"e.g. n_heads = {_divisor_hint(m.d_model, m.n_heads)}",
            label,
        )
    if not 0.0 <= m.dropout < 1.0:
        fail("model.dropout", "must be in [0, 1)", m.dropout)
    _validate_training(preset, fail)
    if not 0.0 < t.val_fraction < 1.0:
        fail("training.val_fraction", "must be between 0 and 1 (exclusive)", t.val_fraction)
    if t.split not in SPLITS:
        fail("training.split", f"must be one of {', '.join(SPLITS)}", t.split)
    if t.layout not in LAYOUTS:
        fail("training.layout", f"must be one of {', '.join(LAYOUTS)}", t.layout)
    if not 0.0 <= t.context_weight <= 1.0:
        fail("training.context_weight", "must be in [0, 1]", t.context_weight)


def _validate_training(preset: Preset, fail) -> None:
    """The [training] checks every kind shares."""
    t, label = preset.training, preset.label
    for key in ("batch_size", "grad_accum_steps", "epochs", "eval_interval", "save_interval"):
        if getattr(t, key) < 1:
            fail(f"training.{key}", "must be >= 1", getattr(t, key))
    for key in ("warmup_steps", "max_steps", "eval_batches", "keep_checkpoints", "seed", "num_threads", "sample_interval",
                "rename_variants", "patience"):
        if getattr(t, key) < 0:
            fail(f"training.{key}", "must be >= 0", getattr(t, key))
    if not t.learning_rate > 0:
        fail("training.learning_rate", "must be > 0", t.learning_rate)
    if t.min_lr < 0:
        fail("training.min_lr", "must be >= 0", t.min_lr)
    if t.min_lr > t.learning_rate:
        raise PresetError(
            "training.min_lr", f"training.min_lr ({t.min_lr}) must be <= training.learning_rate ({t.learning_rate})", label
        )
    if t.weight_decay < 0:
        fail("training.weight_decay", "must be >= 0", t.weight_decay)
    if t.grad_clip < 0:
        fail("training.grad_clip", "must be >= 0 (0 = no clipping)", t.grad_clip)
    for i, beta in enumerate(t.betas):
        if not 0.0 <= beta < 1.0:
            raise PresetError("training.betas", f"training.betas[{i}] must be in [0, 1), got {beta!r}", label)
    if not DEVICE_RE.match(t.device):
        fail("training.device", "must be auto, cpu, cuda, cuda:N or mps", t.device)
    if t.precision not in PRECISIONS:
        fail("training.precision", f"must be one of {', '.join(PRECISIONS)}", t.precision)
    if t.optimizer not in OPTIMIZERS:
        fail("training.optimizer", f"must be one of {', '.join(OPTIMIZERS)}", t.optimizer)
    if not t.muon_lr > 0:
        fail("training.muon_lr", "must be > 0", t.muon_lr)
    select_by = SCORER_SELECT_BY if preset.kind == "scorer" else SELECT_BY
    if t.select_by not in select_by:
        fail("training.select_by", f"must be one of {', '.join(select_by)}", t.select_by)


def _validate_scorer(preset: Preset, fail) -> None:
    """The scorer's [model] and [data] checks."""
    from tactics_core.scorer.buckets import parse_buckets

    m, d = preset.model, preset.data
    for key in ("hidden_size", "hidden_layers"):
        if getattr(m, key) < 1:
            fail(f"model.{key}", "must be >= 1", getattr(m, key))
    if not 0.0 <= m.dropout < 1.0:
        fail("model.dropout", "must be in [0, 1)", m.dropout)
    if len(set(m.features)) != len(m.features):
        fail("model.features", "must not name a feature twice", m.features)
    buckets = {}
    for key in ("val_buckets", "train_buckets"):
        try:
            buckets[key] = set(parse_buckets(getattr(d, key)))
        except ValueError as exc:
            fail(f"data.{key}", f"must be goal buckets 0-99 like \"90-99\" or \"0-9,20\" ({exc})", getattr(d, key))
    if buckets["val_buckets"] & buckets["train_buckets"]:
        both = sorted(buckets["val_buckets"] & buckets["train_buckets"])
        fail("data.train_buckets", f"must not overlap data.val_buckets (both hold {both[:5]})", d.train_buckets)
    if d.negatives_per_positive < 0:
        fail("data.negatives_per_positive", "must be >= 0 (0 = keep all)", d.negatives_per_positive)
    if d.loss not in SCORER_LOSSES:
        fail("data.loss", f"must be one of {', '.join(SCORER_LOSSES)}", d.loss)
    if d.batches not in SCORER_BATCHES:
        fail("data.batches", f"must be one of {', '.join(SCORER_BATCHES)}", d.batches)
    if d.batches == "rows" and d.loss != "bce":
        fail("data.batches", f"must be \"searches\" with loss = {d.loss} (the ranking term compares the steps of one search)", d.batches)
    for key in ("rank_weight", "pos_weight"):
        if getattr(d, key) < 0:
            fail(f"data.{key}", "must be >= 0", getattr(d, key))
    for key in ("max_train_rows", "max_val_rows"):
        if getattr(d, key) < 0:
            fail(f"data.{key}", "must be >= 0 (0 = all)", getattr(d, key))


def _divisor_hint(d_model: int, n_heads: int) -> int:
    divisors = [h for h in range(1, d_model + 1) if d_model % h == 0]
    return min(divisors, key=lambda h: (abs(h - n_heads), h))


# ----------------------------------------------------------------------------
# Overrides


def _parse_value(text: str) -> Any:
    """A TOML value (`8`, `3e-4`, `"cuda"`, `[0.9, 0.99]`, `true`); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        stripped = text.strip()
        if stripped and not stripped.startswith(("[", "{", '"', "'")):
            return stripped
        raise


def _read_value(label: str, section: str, key: str, raw: str, kind: str = "gpt") -> Any:
    """One key's value from its TOML text, type-checked; errors name `label` and the key."""
    try:
        value = _parse_value(raw)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{section}.{key}", f"cannot read the value {raw!r} ({_toml_error(exc)})", label) from exc
    return _coerce(label, section, key, value, getattr(kind_sections(kind)[section](), key))


def _rebuilt(preset: Preset, data: dict[str, Any], note: str = "") -> Preset:
    """`preset` again from edited plain data, validated whole; `note` says where the edits came from."""
    try:
        result = preset_from_dict(data, source=preset.source, name=preset.name, builtin=preset.builtin)
    except PresetError as exc:
        if not note:
            raise
        raise PresetError(exc.key, exc.reason, exc.label, note) from None
    result.header = preset.header
    return result


def apply_overrides(preset: Preset, overrides: Iterable[str]) -> Preset:
    """A copy of `preset` with `section.key=value` overrides applied and validated.

    A key without a section (`batch_size=8`) is accepted when it is unambiguous.
    """
    overrides = list(overrides)
    if not overrides:
        return preset
    data = preset_to_dict(preset)
    for item in overrides:
        where = f"--set {item}"
        if "=" not in item:
            raise PresetError(None, "expected section.key=value, e.g. training.batch_size=8", where)
        dotted, raw = item.split("=", 1)
        dotted = dotted.strip()
        if dotted == "description":
            data["description"] = raw.strip().strip('"')
            continue
        sections = kind_sections(preset.kind)
        if "." in dotted:
            section, key = dotted.split(".", 1)
        else:
            section, key = _all_keys(preset.kind).get(dotted), dotted
            if section is None:
                raise _unknown_key(where, None, dotted, preset.kind)
        if section not in sections:
            best = _suggest(section, sections)
            hint = f"did you mean {best}.{key}?" if best else f"sections are {', '.join(sections)}"
            raise PresetError(dotted, f"unknown section {section!r} ({hint})", where)
        if key not in data[section]:
            raise _unknown_key(where, section, key, preset.kind)
        data[section][key] = _read_value(where, section, key, raw, preset.kind)
    # Name what the user typed too: the bad value may come from --set, not the file.
    return _rebuilt(preset, data, note=f"after --set {' '.join(overrides)}")


def edit_preset(preset: Preset, texts: dict[str, dict[str, str]]) -> Preset:
    """A copy of `preset` with keys given as TOML text (`{"model": {"n_heads": "4"}}`), validated.

    What the Presets form calls on every keystroke: a PresetError's `key` is
    the field to mark and its `reason` the text to show there.
    """
    data = preset_to_dict(preset)
    sections = kind_sections(preset.kind)
    for section, values in texts.items():
        for key, raw in values.items():
            if section not in sections or key not in data[section]:
                raise _unknown_key(preset.label, section if section in sections else None, key, preset.kind)
            data[section][key] = _read_value(preset.label, section, key, raw, preset.kind)
    return _rebuilt(preset, data)


# ----------------------------------------------------------------------------
# Writing


def preset_to_dict(preset: Preset) -> dict[str, Any]:
    """Plain data: {"description", "model": {...}, "training": {...}}; a scorer's also has
    "kind": "scorer" and "data": {...}, and only the [training] keys it reads."""
    data: dict[str, Any] = {}
    if preset.description:
        data["description"] = preset.description
    if preset.kind != "gpt":
        data["kind"] = preset.kind
    for section in kind_sections(preset.kind):
        values = dataclasses.asdict(getattr(preset, section))
        data[section] = {key: values[key] for key in _section_keys(preset.kind, section)}
    data["training"]["betas"] = list(data["training"]["betas"])
    return data


def _format_value(value: Any) -> str:
    import tomli_w

    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def dumps_preset(preset: Preset) -> str:
    """TOML text of a preset, every key present and documented by a comment.

    Values are formatted by tomli-w, so load -> dumps -> load gives equal values;
    the leading comment lines of the source file are kept.
    """
    data = preset_to_dict(preset)
    lines: list[str] = []
    if preset.header:
        lines += [preset.header, ""]
    if preset.description:
        lines.append(f"description = {_format_value(preset.description)}")
    if preset.kind != "gpt":
        lines.append(f"kind = {_format_value(preset.kind)}")
    if preset.description or preset.kind != "gpt":
        lines.append("")
    for section in kind_sections(preset.kind):
        lines.append(f"[{section}]")
        width = max(len(k) for k in data[section])
        body = [f"{key.ljust(width)} = {_format_value(value)}" for key, value in data[section].items()]
        column = max(len(b) for b in body) + 2
        for text, key in zip(body, data[section]):
            lines.append(f"{text.ljust(column)}# {key_doc(section, key, preset.kind)}")
        lines.append("")
    return "\n".join(lines)


def save_preset(preset: Preset, path: str | Path) -> Path:
    """Write a preset atomically."""
    from tactics_core.common.atomic import atomic_write_text

    path = Path(path)
    atomic_write_text(path, dumps_preset(preset))
    return path


def copy_builtin(
    name: str,
    presets_dir: str | Path = DEFAULT_PRESETS_DIR,
    force: bool = False,
    dest: str | Path | None = None,
) -> Path:
    """Copy a built-in preset (comments and all) into the workspace to edit it.

    `dest` is a new name (saved as presets_dir/DEST.toml) or a path to a
    .toml file; never overwrites an existing file unless `force`.
    """
    from tactics_core.common.atomic import atomic_write_text

    presets_dir = Path(presets_dir)
    builtins = _builtin_files()
    if name in builtins:
        src = builtins[name]
    else:
        src, _ = resolve_preset_path(name, presets_dir)  # a workspace preset or a file
    if dest is None:
        target = presets_dir / f"{src.stem}.toml"
    else:
        text = str(dest)
        target = Path(dest) if ("/" in text or text.endswith(".toml")) else presets_dir / f"{text}.toml"
    if target.exists() and not force:
        raise TacticsError(
            f"{target} already exists; pass --force to overwrite it, or give another DEST"
        )
    if target.exists() and target.resolve() == src.resolve():
        raise TacticsError(f"{target} is the preset being copied; give another DEST")
    text = src.read_text(encoding="utf-8")
    loads_preset(text, source=src, name=src.stem)  # never copy a broken preset
    atomic_write_text(target, text)
    return target
