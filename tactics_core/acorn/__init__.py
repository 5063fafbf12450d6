"""The adapter to the real Acorn: its syntax, its library (acornlib) and its binary.

- `syntax`: Acorn expressions, parsed and printed as acorn's code generator prints them;
- `types`: an acornlib checkout's signatures and a theorem's expression types;
- `library`: `tactics import acornlib`, an acornlib checkout → a proof-file corpus;
- `generative_judge`: runs the real acorn binary's generative prover on a model
  (`tactics prove`); only the CLI and the TUI import it (an import-linter contract).

This package re-exports nothing, so that importing the syntax does not start the judge.
"""
