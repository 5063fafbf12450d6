"""tactics_core: the headless engine behind tactics-tui.

Reads proof corpora, trains the BPE tokenizer and the GPT, keeps checkpoints,
exports to ONNX and completes proofs. It never imports Textual (a test checks),
and heavy libraries (torch, onnxruntime) are imported only inside the modules
that need them so that `tactics --help` and corpus stats start fast.
"""

__version__ = "0.1.0"
