"""`tactics import acornlib`: an acornlib checkout's sources and certificates → a proof-file corpus."""

from tactics_core.acorn.library.importer import (  # noqa: F401  (the public surface)
    STYLES,
    Certificate,
    ImportReport,
    Problem,
    block_prefix,
    goal_key,
    group_problems,
    hypothesis_and_counterfactual,
    import_acornlib,
    module_files,
    name_digits,
    negate,
    typeclass_conditions,
)
