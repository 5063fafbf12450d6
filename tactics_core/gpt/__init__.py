"""The generative GPT model kind: everything specific to a model that writes the next proof line.

Data: `corpus` (proof files: parse, validate, stream, stats), `demo` (the generated demo
corpus), `tokenizer` (the BPE tokenizer), `layouts` (how a training file is encoded and a goal
asked), `augment` (renamed-variable copies), `token_store` (tokenized files by content),
`data` (the split by theorem or module, the token cache, the splits and batches the trainer reads).

Model: `model_config` (`GPTConfig`, no torch), `model` (the GPT with its KV cache, `CrashGuard`, the torch form of `CrashRule`).

Inference: `decoding` (the one decoding loop), `complete` (completion over a checkpoint or an
export), `prover_figures` (the prover's numbers), `prover_replica` (the replica of acorn's
generative prover: prompt, stream, attempts, rollouts, `CrashRule`), `evaluate` (the
prover's figures of a model), `export` (ONNX + tokenizer + config).

Import the modules themselves: this package re-exports nothing, so that importing one light
module (corpus, presets' `model_config`) loads neither torch nor the rest.
"""
