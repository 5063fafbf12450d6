"""What every ONNX export of the console shares, whatever its model kind: the limits of the
ONNX Runtime that acorn links (1.20: IR <= 10, opset <= 21), how an export is kept within them,
and the report of the checks an export passed (`Check`, `ExportReport`)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tactics_core.common.errors import TacticsError

# The prover (acorn f47631b0, Rust crate ort 2.0.0-rc.9) links ONNX Runtime 1.20, which refuses a
# model of IR version 11 ("Unsupported model IR version: 11, max supported IR version: 10", seen
# with the real binary) and knows opsets up to 21. The exporter is pinned to opset 20 and the
# file's IR version checked, so a newer torch/onnx default cannot make an export acorn refuses.
EXPORT_OPSET = 20
MAX_IR_VERSION = 10
MAX_OPSET = 21


@dataclass
class Check:
    name: str
    ok: bool
    max_abs_diff: float | None = None
    detail: str = ""

    def line(self) -> str:
        diff = f" max|Δ|={self.max_abs_diff:.2e}" if self.max_abs_diff is not None else ""
        return f"{'ok ' if self.ok else 'FAIL'} {self.name}{diff} {self.detail}".rstrip()


@dataclass
class ExportReport:
    path: str
    checkpoint: str
    seconds: float
    max_abs_diff: float
    size_bytes: int
    opset: int
    config: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def fit_runtime_limits(path: Path) -> int:
    """Keep model.onnx readable by ONNX Runtime 1.20 (IR <= 10, opset <= 21); return its opset.

    An IR version above 10 is lowered when the graph uses nothing newer (the
    checker then confirms it); an opset above 21 cannot be lowered here and
    fails the export, naming the reason.
    """
    import onnx

    proto = onnx.load(str(path))
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > MAX_OPSET:
        raise TacticsError(
            f"ONNX export wrote opset {opset}, above the {MAX_OPSET} the prover's ONNX Runtime 1.20 reads; "
            "install an onnx/torch pair that honours opset_version, or report it"
        )
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    return opset


def runtime_limits_check(path: Path) -> "Check":
    """The export's IR version and opset against what the prover's ONNX Runtime 1.20 reads."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    ok = proto.ir_version <= MAX_IR_VERSION and opset <= MAX_OPSET
    return Check("ONNX Runtime 1.20 limits", ok,
                 detail=f"IR {proto.ir_version} (<= {MAX_IR_VERSION}), opset {opset} (<= {MAX_OPSET})")


_EXPORTER_LOGGERS = ("torch.onnx", "torch._dynamo", "torch.export", "torch.fx", "onnxscript")


@contextlib.contextmanager
def quiet_exporter(what_to_do: str) -> Iterator[None]:
    """Run `torch.onnx.export` without its chatter (loggers, warnings, prints), and turn what it
    raises (many types) into one line: "ONNX export failed: <its first line>; <what_to_do>"."""
    loggers = [logging.getLogger(name) for name in _EXPORTER_LOGGERS]
    levels = [lg.level for lg in loggers]
    sink = io.StringIO()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    except Exception as exc:  # the exporter raises many types; keep the first line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TacticsError(f"ONNX export failed: {first[:200]}; {what_to_do}") from None
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
