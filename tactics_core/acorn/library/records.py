"""The import's records: what it reads (`Module`, `Certificate`) and what it reports
(`Problem`, `ImportReport`, `group_problems`)."""

from __future__ import annotations

from dataclasses import dataclass, field


METHODS = ("theorem", "exact", "fuzzy", "instance", "order", "unlocated")


@dataclass(frozen=True)
class Problem:
    """One piece of input that was skipped and why (file relative to the checkout)."""

    file: str
    problem: str
    line: int | None = None
    kind: str = "other"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.problem}"

    def to_dict(self) -> dict:
        out = {"file": self.file, "problem": self.problem, "kind": self.kind}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class ImportReport:
    """What an import did: the summary that the CLI prints and the TUI shows."""

    source: str
    data_dir: str
    manifest: str
    layout: str
    modules: int = 0
    certificates: int = 0
    files: int = 0
    bytes: int = 0
    methods: dict = field(default_factory=lambda: {m: 0 for m in METHODS})
    skipped_certificates: int = 0
    capped_certificates: int = 0
    problems: list = field(default_factory=list)
    # Goals found only by position or not at all: statistics (counted in `methods`), not
    # problems; every one is kept here for --json.
    fallbacks: list = field(default_factory=list)
    seconds: float = 0.0
    replaced: bool = False

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "data_dir": self.data_dir,
            "manifest": self.manifest,
            "layout": self.layout,
            "modules": self.modules,
            "certificates": self.certificates,
            "files": self.files,
            "bytes": self.bytes,
            "methods": dict(self.methods),
            "skipped_certificates": self.skipped_certificates,
            "capped_certificates": self.capped_certificates,
            "problems": [p.to_dict() for p in self.problems],
            "fallbacks": list(self.fallbacks),
            "seconds": round(self.seconds, 3),
            "replaced": self.replaced,
        }


# What each problem kind means, in the order a summary lists them.
PROBLEM_KINDS = {
    "unreadable": "files that cannot be read",
    "symlink-loop": "symlink loops",
    "encoding": "files that are not UTF-8",
    "json": "certificate lines that are not JSON",
    "no-goal": "certificate lines without a goal",
    "orphan": "certificate files without their source",
    "empty": "empty certificate files",
    "other": "other problems",
}


def group_problems(problems: list[dict], examples: int = 3) -> list[dict]:
    """Problems (as in `ImportReport.to_dict()`) by kind: kind, title, count and the first
    few as one-line examples, so 60 real problems are not buried in a flat list."""
    groups: dict = {}
    for p in problems:
        kind = p.get("kind") if p.get("kind") in PROBLEM_KINDS else "other"
        group = groups.setdefault(kind, {"kind": kind, "title": PROBLEM_KINDS[kind], "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < examples:
            where = f"{p.get('file', '?')}:{p['line']}" if p.get("line") is not None else str(p.get("file", "?"))
            group["examples"].append(f"{where}: {p.get('problem', '?')}")
    return [groups[k] for k in PROBLEM_KINDS if k in groups]


@dataclass(frozen=True)
class Module:
    """A certificate file and the source module it belongs to (paths relative to the checkout)."""

    source: str | None
    cert: str


@dataclass(frozen=True)
class Certificate:
    line: int  # 1-based line in the certificate file
    goal: str
    proof: tuple[str, ...]
