"""acorn's proof-step scorer: the small model that orders the saturation prover's activations.

`traces` reads the traces `acorn eval --trace-out T.jsonl.zst` writes (streamed, hostile input
reported, not fatal), `trace_store` caches their numeric columns in binary (keyed by the trace's
sha256, opened memory-mapped) and `stats` sums them up for `tactics traces stats`. None of these
modules imports torch.
"""
