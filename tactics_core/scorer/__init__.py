"""acorn 0.2.6's proof-step scorer, the second model kind: the small MLP that orders the
saturation prover's clause activations (`acorn eval --policy model --model X.onnx`).

- `traces`, `trace_store`, `stats`: the traces `acorn eval --trace-out` writes, read streamed
  (hostile input reported, not fatal), their numeric columns cached in binary (keyed by sha256,
  memory-mapped), summed up for `tactics traces stats` (no torch in these three);
- `buckets`, `contract`, `settings`: acorn's goal buckets, the feature contract acorn reads
  beside the .onnx, the preset sections of a scorer;
- `data`, `model`, `metrics`, `kind`: the rows split by goal bucket, the MLP, its figures, and
  the scorer's side of the training seam (`training.model_kind`);
- `export`: NAME.onnx + NAME.features.json, verified.
"""
