"""The Acorn prover's figures (../shared/PROVER_PROTOCOL.md), in one place.

Everything that asks a model the prover's way takes them from here: the
protocol in code (`prover_replica.py`), completion's defaults, the CLI's defaults and
help, the Playground. A module of plain numbers, so that building the CLI's
parser (which shows them) imports nothing heavy.
"""

PROMPT_RESERVE = 100  # tokens the prover leaves after the prompt: it keeps the last ctx - 100
TEMPERATURE = 0.8  # each token is sampled from softmax(logits / 0.8), no top-k, no top-p
MAX_LINE_TOKENS = 100  # tokens sampled per line at most
ROLLOUT_ATTEMPTS = 10  # attempts per rollout, failed ones included
SEARCH_SECONDS = 5.0  # the prover's search budget per goal
