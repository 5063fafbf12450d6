"""Proof completion: N candidate next proof lines for a goal, ranked by log-probability.

Why it is shaped this way:

* **One prefill, then batched decoding.** The prompt is run once (batch 1);
  its key/value cache is then expanded to N rows and the N candidates are
  decoded together, one token per step, each step feeding only the newest
  token. Rows that finish are dropped from the batch. This is what makes 8
  candidates cost about as much as one (see bench/completion_latency.py).
* **Two backends, one decoder.** A checkpoint runs in PyTorch; an export folder
  runs in ONNX Runtime through exactly the contract the prover uses
  (`input_ids` + `past_key_values.{i}.key/value` in, `logits` +
  `present_key_values.{i}.key/value` out). Sampling, stopping and the limits
  are the loop the prover's attempts use too (`decoding.decode`), and ranking
  is numpy code, so greedy decoding gives the same text on both.
* **Prompts as in training.** A model is asked with the prompt of the layout
  it was trained on (`Layout.prompt`, `tactics_core.gpt.layouts`): a `prover`-layout
  model (the default) exactly as the Acorn prover asks it, a `file`-layout one
  with context, `@P` and the proof lines so far; `prover_prompt=True` asks any
  model the prover's way. Too-long prompts are cut, not crashed on, and the
  result says so.

Scores are the model's own log-probability of the line (temperature 1, no
top-k/top-p), including the token that ends it, so they are comparable across
sampling settings.

Temperature 0 is deterministic: candidate i starts with the i-th most likely
first token and continues greedily, so candidate 1 is the plain greedy line
and the others are its best alternatives.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from tactics_core.common.device import resolve_device
from tactics_core.common.errors import TacticsError
from tactics_core.common.progress import CancelToken
from tactics_core.gpt import prover_figures, prover_replica
from tactics_core.gpt.corpus import normalize_line
from tactics_core.gpt.decoding import CONTEXT_LIMIT, Backend, Decoded, decode, stop_ids
from tactics_core.gpt.decoding import sample_tokens  # noqa: F401  (tests import it from here)
from tactics_core.gpt.layouts import FILE, PROVER, Layout, Prompt, layout_named
from tactics_core.gpt.layouts import build_prompt  # noqa: F401  (tests import it from here)
from tactics_core.gpt.tokenizer import load_tokenizer
from tactics_core.runs.checkpoints import load_model, training_layout

EXPORT_MODEL_FILE = "model.onnx"
EXPORT_CONFIG_FILE = "config.json"
EXPORT_TOKENIZER_FILE = "tokenizer.json"


@dataclass
class Candidate:
    """One proposed next proof line."""

    text: str
    logprob: float  # natural log-probability of the line under the model
    tokens: int = 0  # tokens generated, the stop token included
    finished: bool = True  # False: cut by --max-tokens or the context limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CompletionResult:
    candidates: list[Candidate]
    seconds: float
    backend: str  # "torch" or "onnx"
    prompt: str
    prompt_tokens: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "seconds": self.seconds,
            "backend": self.backend,
            "prompt": self.prompt,
            "prompt_tokens": self.prompt_tokens,
            "truncated": self.truncated,
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- backends


class TorchBackend:
    """Runs a tactics_core.gpt.model.GPT with its KV cache.

    With a `guard` (model.CrashGuard) the logits it returns for sampling
    (`prefill`, `extend`, `step`) are guarded as an export's are; `all_logits`
    (what scoring reads) stays the model's own, as an export's `raw_logits`.
    """

    name = "torch"

    def __init__(self, model: Any, guard: Any = None) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.config = model.config
        self.context_length = int(model.config.context_length)
        self.device = next(model.parameters()).device
        self.guard = None if guard is None else guard.to(self.device)

    def _logits(self, logits) -> np.ndarray:
        return logits.float().cpu().numpy()

    def _sampled(self, x, logits):
        return logits if self.guard is None else self.guard(x, logits)

    def prefill(self, ids: Sequence[int]):
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            logits, cache = self.model(x, past_key_values=None)
            logits = self._sampled(x, logits)
        return self._logits(logits[0, -1]), cache

    def all_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits at every position of one sequence, [len, vocab] (the model's own: what scoring reads)."""
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            logits, _ = self.model(x, past_key_values=None)
        return self._logits(logits[0])

    def empty_cache(self, batch: int = 1):
        return self.model.empty_cache(batch)

    def extend(self, ids: Sequence[int], cache):
        """Feed several tokens (batch 1) after `cache`; logits after the last one."""
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            logits, cache = self.model(x, past_key_values=cache)
            logits = self._sampled(x, logits)
        return self._logits(logits[0, -1]), cache

    def expand(self, cache, n: int):
        return [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in cache]

    def select(self, cache, rows: list[int]):
        idx = self.torch.tensor(rows, dtype=self.torch.long, device=self.device)
        return [(k.index_select(0, idx), v.index_select(0, idx)) for k, v in cache]

    def step(self, tokens: Sequence[int], cache):
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor(list(tokens), dtype=torch.long, device=self.device).view(-1, 1)
            logits, cache = self.model(x, past_key_values=cache)
            logits = self._sampled(x, logits)
        return self._logits(logits[:, -1]), cache


class OnnxBackend:
    """Runs an export folder's model.onnx in ONNX Runtime through the prover's contract."""

    name = "onnx"

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        self.config = config
        self.context_length = int(config["context_length"])
        self.n_layers = int(config["n_layers"])
        self.n_heads = int(config["n_heads"])
        self.head_dim = int(config["head_dim"])
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        if device in ("cuda", "auto") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        path = folder / EXPORT_MODEL_FILE
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TacticsError(f"cannot load {path}: {first[:160]}; export the checkpoint again") from None
        self.past_names = [
            (f"past_key_values.{i}.key", f"past_key_values.{i}.value") for i in range(self.n_layers)
        ]
        inputs = {i.name for i in self.session.get_inputs()}
        missing = [n for pair in self.past_names for n in pair if n not in inputs] + (
            [] if "input_ids" in inputs else ["input_ids"]
        )
        if missing:
            raise TacticsError(
                f"{path} does not follow the tactics ONNX contract (missing input {missing[0]}); "
                "export it again with `tactics export`"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _run(self, ids: np.ndarray, cache: list[np.ndarray], raw: bool = False):
        """(logits, presents): the sampled `logits`, or with `raw` the model's own (`raw_logits` of a
        guarded export; an export without a guard has only `logits`)."""
        feed = {"input_ids": ids}
        for i, (kname, vname) in enumerate(self.past_names):
            feed[kname] = cache[2 * i]
            feed[vname] = cache[2 * i + 1]
        outputs = dict(zip(self.output_names, self.session.run(None, feed)))
        presents = []
        for i in range(self.n_layers):
            presents += [outputs[f"present_key_values.{i}.key"], outputs[f"present_key_values.{i}.value"]]
        return outputs.get("raw_logits", outputs["logits"]) if raw else outputs["logits"], presents

    def empty_cache(self, batch: int = 1) -> list[np.ndarray]:
        shape = (batch, self.n_heads, 0, self.head_dim)
        return [np.zeros(shape, dtype=np.float32) for _ in range(2 * self.n_layers)]

    def prefill(self, ids: Sequence[int]):
        logits, cache = self._run(np.asarray([list(ids)], dtype=np.int64), self.empty_cache(1))
        return logits[0, -1], cache

    def all_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits at every position of one sequence (the model's own: what scoring reads)."""
        logits, _ = self._run(np.asarray([list(ids)], dtype=np.int64), self.empty_cache(1), raw=True)
        return logits[0]

    def extend(self, ids: Sequence[int], cache):
        """Feed several tokens (batch 1) after `cache`; logits after the last one."""
        logits, cache = self._run(np.asarray([list(ids)], dtype=np.int64), cache)
        return logits[0, -1], cache

    def expand(self, cache, n: int):
        return [np.repeat(a, n, axis=0) for a in cache]

    def select(self, cache, rows: list[int]):
        idx = np.asarray(rows, dtype=np.int64)
        return [a[idx] for a in cache]

    def step(self, tokens: Sequence[int], cache):
        logits, cache = self._run(np.asarray(list(tokens), dtype=np.int64).reshape(-1, 1), cache)
        return logits[:, -1], cache


# ---------------------------------------------------------------- decoding


def decode_lines(
    backend: Backend,
    prompt_ids: Sequence[int],
    n: int,
    stop_ids: Collection[int],
    temperature: float = prover_figures.TEMPERATURE,
    top_p: float = 0.95,
    top_k: int = 0,
    max_tokens: int = prover_figures.MAX_LINE_TOKENS,
    rng: np.random.Generator | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[Decoded], list[str]]:
    """Prefill once, then decode n rows in one batch (`decoding.decode`), scored, greedy rows spread.

    Returns the rows (their tokens end with the stop token, if any) and notes
    (the context limit reached).
    """
    ctx = backend.context_length
    if not prompt_ids:
        raise TacticsError("empty prompt: give at least the goal context")
    if len(prompt_ids) > ctx:
        raise TacticsError(f"prompt of {len(prompt_ids)} tokens exceeds the context length {ctx}")
    last, cache = backend.prefill(prompt_ids)
    rows, _ = decode(
        backend, cache, last, len(prompt_ids), n,
        stop_ids=stop_ids, temperature=temperature, top_p=top_p, top_k=top_k, max_tokens=max_tokens,
        rng=rng or np.random.default_rng(), spread_first=True, score=True, cancel=cancel,
    )
    notes = []
    # Rows decode in step, so a row at the limit with tokens to spare means they all stopped there.
    if any(r.status == CONTEXT_LIMIT and len(r.tokens) < max_tokens for r in rows):
        notes.append(
            f"generation reached the context length ({ctx} tokens) before the line ended; "
            "unfinished candidates are marked"
        )
    return rows, notes


def line_text(tokenizer: Any, tokens: Sequence[int]) -> str:
    """The text of generated tokens up to the first newline."""
    return tokenizer.decode(tokens).split("\n", 1)[0].rstrip("\r")


def rank_candidates(tokenizer: Any, rows: list[Decoded]) -> tuple[list[Candidate], int]:
    """Deduplicated (after whitespace normalisation) candidates, best log-probability first.

    Also returns how many rows ended the proof (EOS, an empty line or a
    section marker, none of which is a proof line).
    """
    best: dict[str, Candidate] = {}
    ended = 0
    for row in rows:
        text = line_text(tokenizer, row.tokens)
        if prover_replica.is_marker_or_empty(text):  # a marker line would end the proof section
            ended += 1
            continue
        key = normalize_line(text)
        cand = Candidate(text.strip(), row.logprob, len(row.tokens), row.finished)
        if key not in best or cand.logprob > best[key].logprob:
            best[key] = cand
    return sorted(best.values(), key=lambda c: -c.logprob), ended


# ---------------------------------------------------------------- the engine


def export_layout(config: dict[str, Any]) -> Layout:
    """The layout an export's config.json records (`file` for exports from before layouts)."""
    return layout_named(str(config.get("layout", FILE.name)))


def read_export_config(folder: Path) -> dict[str, Any]:
    """config.json of an export folder, with a one-line error when it is not one."""
    model_path = folder / EXPORT_MODEL_FILE
    config_path = folder / EXPORT_CONFIG_FILE
    if not model_path.is_file():
        raise TacticsError(f"{folder} is not an export folder (no {EXPORT_MODEL_FILE}); run `tactics export` first")
    if not config_path.is_file():
        raise TacticsError(f"{folder} has no {EXPORT_CONFIG_FILE}; export the checkpoint again with `tactics export`")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TacticsError(f"{config_path} is not valid JSON ({exc}); export the checkpoint again") from None
    for key in ("vocab_size", "context_length", "n_layers", "n_heads", "head_dim"):
        if not isinstance(config.get(key), int):
            raise TacticsError(f"{config_path} lacks the integer {key!r}; export the checkpoint again")
    return config


class Completer:
    """A loaded model + tokenizer that proposes next proof lines."""

    def __init__(self, backend: Backend, tokenizer: Any, source: Path, info: dict[str, Any] | None = None,
                 layout: Layout = FILE) -> None:
        self.backend = backend
        self.tokenizer = tokenizer
        self.source = Path(source)
        self.info = info or {}
        self.trained_on = layout  # the data layout the model was trained on: how it is asked
        self.stop_ids = stop_ids(tokenizer, eos=True)

    @property
    def layout(self) -> str:
        """The name of the layout the model was trained on, as checkpoints and reports record it."""
        return self.trained_on.name

    def asked_in(self, prover_prompt: bool = False) -> Layout:
        """The layout whose prompt the model gets: its own, or with `prover_prompt` the prover's."""
        return PROVER if prover_prompt else self.trained_on

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def context_length(self) -> int:
        return self.backend.context_length

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> "Completer":
        """A checkpoint (.pt) runs in PyTorch; an export folder in ONNX Runtime."""
        path = Path(path)
        if not path.exists():
            raise TacticsError(f"model not found: {path}; give a checkpoint (.pt) or an export folder")
        device = resolve_device(device, check=False)  # ONNX Runtime chooses its own provider for cuda
        if path.is_dir():
            config = read_export_config(path)
            if not (path / EXPORT_TOKENIZER_FILE).is_file():
                raise TacticsError(f"{path} has no {EXPORT_TOKENIZER_FILE}; export the checkpoint again with `tactics export`")
            tokenizer = load_tokenizer(path / EXPORT_TOKENIZER_FILE)
            if tokenizer.vocab_size != config["vocab_size"]:
                raise TacticsError(
                    f"{path}: tokenizer.json has {tokenizer.vocab_size} tokens but the model expects "
                    f"{config['vocab_size']}; export the checkpoint again"
                )
            backend = OnnxBackend(path, config, threads=threads, device=device)
            return cls(backend, tokenizer, path, config, layout=export_layout(config))
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        loaded = load_model(path, device=device)
        tokenizer = load_tokenizer(loaded.tokenizer_path)
        if tokenizer.vocab_size != loaded.config.vocab_size:
            raise TacticsError(
                f"{loaded.tokenizer_path} has {tokenizer.vocab_size} tokens but {path} expects "
                f"{loaded.config.vocab_size}; use the tokenizer it was trained with"
            )
        info = {"payload": {k: v for k, v in loaded.payload.items() if k not in ("model", "optimizer", "train_state")}}
        # Asked as its export would be: the crash guard on what is sampled (prover_replica.CrashRule).
        from tactics_core.gpt.model import CrashGuard

        guard = CrashGuard.for_tokenizer(tokenizer)
        return cls(TorchBackend(loaded.model, guard), tokenizer, path, info, layout=layout_named(training_layout(loaded.payload)))

    def prompt(
        self, context: Any, proof_so_far: Sequence[str] = (), prover_prompt: bool = False,
        max_tokens: int = prover_figures.MAX_LINE_TOKENS,
    ) -> Prompt:
        """The tokens the model continues: its layout's prompt (`asked_in`)."""
        return self.asked_in(prover_prompt).prompt(self.tokenizer, context, self.context_length, proof_so_far, max_tokens)

    def complete(
        self,
        context: Any,
        proof_so_far: Sequence[str] = (),
        n: int = 8,
        temperature: float = prover_figures.TEMPERATURE,
        top_p: float = 0.95,
        top_k: int = 0,
        max_tokens: int = prover_figures.MAX_LINE_TOKENS,
        prover_prompt: bool = False,
        seed: int | None = None,
        cancel: CancelToken | None = None,
    ) -> CompletionResult:
        """N deduplicated candidate next lines for `context`, best first."""
        if n < 1:
            raise TacticsError(f"-n must be at least 1, got {n}")
        if max_tokens < 1:
            raise TacticsError(f"--max-tokens must be at least 1, got {max_tokens}")
        if temperature < 0:
            raise TacticsError(f"--temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise TacticsError(f"--top-p must be in (0, 1], got {top_p}")
        if top_k < 0:
            raise TacticsError(f"--top-k must be >= 0, got {top_k}")
        start = time.perf_counter()
        prompt = self.prompt(context, proof_so_far, prover_prompt, max_tokens)
        rows, notes = decode_lines(
            self.backend,
            prompt.ids,
            n,
            self.stop_ids,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_tokens=max_tokens,
            rng=np.random.default_rng(seed),
            cancel=cancel,
        )
        candidates, ended = rank_candidates(self.tokenizer, rows)
        all_notes = list(prompt.notes) + notes
        if ended:
            all_notes.append(f"{ended} of {len(rows)} sample(s) proposed no proof line (end of proof, empty line or a section marker)")
        unfinished = sum(1 for c in candidates if not c.finished)
        if unfinished:
            all_notes.append(f"{unfinished} candidate(s) were cut at {max_tokens} tokens or the context limit")
        return CompletionResult(
            candidates=candidates,
            seconds=time.perf_counter() - start,
            backend=self.backend.name,
            prompt=prompt.text,
            prompt_tokens=len(prompt.ids),
            truncated=prompt.truncated,
            notes=all_notes,
        )


def greedy_next_line(model: Any, tokenizer: Any, goal: Any, max_tokens: int = 64, layout: Layout = FILE) -> str:
    """The greedy next line for `goal` (a ProofFile or proof-file text) from an in-memory GPT
    (the trainer's live sample), asked with `layout`'s prompt as `Completer.complete` asks it.
    Leaves the model's train/eval mode as it found it.
    """
    ids = layout.prompt(tokenizer, goal, int(model.config.context_length), max_tokens=max_tokens).ids
    was_training = model.training
    model.eval()
    try:
        rows, _ = decode_lines(TorchBackend(model), ids, 1, stop_ids(tokenizer, eos=True), temperature=0, max_tokens=max_tokens)
    finally:
        model.train(was_training)
    return line_text(tokenizer, rows[0].tokens)
