"""`tactics import acornlib`: an acornlib checkout's sources and certificates → a proof-file corpus.

The import reads the checkout (`checkout`), parses each source into the places a certificate
can prove (`source_parser`, with the claim text rules of `claims`), aligns each module's
certificates with them (`alignment`), writes each as a proof file (`rendering`) and keeps what
it did in an `ImportReport` (`records`); `importer` drives it, one module at a time.

The public surface is re-exported here: `import_acornlib`, `ImportReport`, `Problem`,
`group_problems` (the summary the CLI and the TUI print) and `STYLES`.
"""

from tactics_core.acorn.library.importer import import_acornlib
from tactics_core.acorn.library.records import ImportReport, Problem, group_problems
from tactics_core.acorn.library.rendering import STYLES

__all__ = ["STYLES", "ImportReport", "Problem", "group_problems", "import_acornlib"]
