"""Where each certificate's goal is in its source: the alignment of a module's certificates
with its slots (`locate`, `Placement`), exact keys first, then fuzzy, then order."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, replace

from tactics_core.acorn.library.claims import goal_key, token_key
from tactics_core.acorn.library.records import Certificate
from tactics_core.acorn.library.source_parser import Slot


FUZZY_RATIO = 0.75


# Alignment scores: one exact match outweighs any number of fuzzy ones, one fuzzy match any
# number of plain-position ones.
_EXACT = 1_000_000
_FUZZY = 1_000
_ORDER = 1


@dataclass(frozen=True)
class Placement:
    """Where one certificate's goal was found."""

    method: str
    slot: Slot | None


def _fuzzy(a: str, slot: Slot) -> float:
    matcher = slot.matcher
    matcher.set_seq1(a)
    if matcher.real_quick_ratio() < FUZZY_RATIO or matcher.quick_ratio() < FUZZY_RATIO:
        return 0.0
    return matcher.ratio()


def _score(cert_key: str, cert_tokens: str, slot: Slot, fuzzy: bool = True) -> tuple[int, str]:
    if slot.kind == "instance":
        exact = 100 if slot.condition and cert_key == slot.condition else 0
        return _FUZZY + exact + slot.first, "instance"
    if cert_key == slot.key or cert_key == slot.body_key:
        return _EXACT, "exact"
    if slot.citation:
        return 0, ""
    if cert_tokens == slot.tokens:  # the same claim, spelled with methods on one side
        return _FUZZY + 100, "fuzzy"
    ratio = _fuzzy(cert_key, slot) if fuzzy else 0.0
    if ratio >= FUZZY_RATIO:
        return _FUZZY + int(ratio * 100), "fuzzy"
    return _ORDER, "order"


# The alignment table of one segment holds certificates x slots cells, each maybe a fuzzy
# comparison. Past ANCHOR_CELLS the segment is first cut at goals whose key occurs once on
# each side (the same placements on both fixtures, a third of the time on the whole tree);
# past ALIGN_CELLS with nothing to cut at, it is halved, so memory and time stay bounded (the
# largest acornlib proof has 1,280 certificates against 1,792 slots).
ANCHOR_CELLS = 1_000
ALIGN_CELLS = 250_000


def _align(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """Monotone alignment of claim certificates to slots that maximises the total score."""
    cells = len(certs) * len(slots)
    if cells <= ANCHOR_CELLS:
        return _align_table(certs, slots)
    anchors = _unique_anchors(certs, slots)
    if not anchors:
        if cells <= ALIGN_CELLS:
            return _align_table(certs, slots)
        h, k = len(certs) // 2, len(slots) // 2
        return _align(certs[:h], slots[:k]) + _align(certs[h:], slots[k:])
    out: list[Placement] = []
    i0 = j0 = 0
    for i, j in anchors:
        out.extend(_align(certs[i0:i], slots[j0:j]))
        out.append(Placement("exact", slots[j]))
        i0, j0 = i + 1, j + 1
    out.extend(_align(certs[i0:], slots[j0:]))
    return out


def _unique_anchors(certs: list[Certificate], slots: list[Slot]) -> list[tuple[int, int]]:
    """The longest in-order chain of (certificate, slot) pairs whose goal key occurs once on
    each side (patience diff's anchors)."""
    cert_keys = [goal_key(c.goal) for c in certs]
    slot_keys = [None if s.kind == "instance" else s.key for s in slots]
    in_certs, in_slots = Counter(cert_keys), Counter(k for k in slot_keys if k is not None)
    where = {k: j for j, k in enumerate(slot_keys) if k is not None and in_slots[k] == 1}
    pairs = [(i, where[k]) for i, k in enumerate(cert_keys) if in_certs[k] == 1 and k in where]
    # longest increasing subsequence of slot indices (pairs are in certificate order)
    tails: list[int] = []
    tail_at: list[int] = []
    back: list[int] = [-1] * len(pairs)
    for p, (_i, j) in enumerate(pairs):
        at = bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            tail_at.append(p)
        else:
            tails[at] = j
            tail_at[at] = p
        back[p] = tail_at[at - 1] if at else -1
    chain: list[tuple[int, int]] = []
    p = tail_at[-1] if tail_at else -1
    while p >= 0:
        chain.append(pairs[p])
        p = back[p]
    return chain[::-1]


def _align_table(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """The exact alignment (a table of len(certs) x len(slots) cells)."""
    n, m = len(certs), len(slots)
    if n == 0:
        return []
    if m == 0:
        return [Placement("unlocated", None) for _ in certs]
    keys = [goal_key(c.goal) for c in certs]
    tokens = [token_key(c.goal) for c in certs]
    # A certificate whose goal is spelled exactly in the segment, as often as certificates
    # state it, is placed there (one exact match outweighs any fuzzy ones): comparing it
    # fuzzily with every other slot is wasted time.
    spelled = Counter(s.key for s in slots if s.kind != "instance")
    spelled.update(s.body_key for s in slots if s.body_key)
    stated = Counter(keys)
    fuzzy = [spelled[k] < stated[k] for k in keys]
    # best[i][j]: best score for certs[i:] against slots[j:]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    choice = [[0] * (m + 1) for _ in range(n + 1)]  # 0 skip slot, 1 unlocated cert, 2 assign
    scores: dict = {}
    for i in range(n - 1, -1, -1):
        row, nxt = best[i], best[i + 1]
        for j in range(m, -1, -1):
            options = [(nxt[j], 1)]
            if j < m:
                options.append((row[j + 1], 0))
                s, method = _score(keys[i], tokens[i], slots[j], fuzzy[i])
                if s > 0:
                    scores[i, j] = method
                    options.append((s + nxt[j + 1], 2))
            value, pick = max(options, key=lambda o: (o[0], o[1]))
            row[j] = value
            choice[i][j] = pick
    out = []
    i = j = 0
    while i < n:
        pick = choice[i][j] if j <= m else 1
        if pick == 2:
            out.append(Placement(scores[i, j], slots[j]))
            i += 1
            j += 1
        elif pick == 0:
            j += 1
        else:
            out.append(Placement("unlocated", None))
            i += 1
    return out


def _expand(slots: list[Slot]) -> list[Slot]:
    """Instances take one certificate per typeclass condition: a copy of their slot for each,
    carrying that condition's key (acorn's 2026 certificates state one condition each, in its
    words; a 2025 certificate states them all at once and matches none exactly, so it goes to
    the first copy, and the next instance's certificate to the next instance)."""
    out = []
    for s in slots:
        if s.kind == "instance":
            out.extend(replace(s, condition=c, first=k == 0) for k, c in enumerate(s.conditions))
        else:
            out.append(s)
    return out


def locate(certs: list[Certificate], slots: list[Slot]) -> list[Placement]:
    """Place every certificate of one module: theorem names first, then the claims between."""
    theorems: dict = {}
    for s in slots:
        if s.kind == "theorem":
            theorems.setdefault(s.name, s)
            if "." in s.name:
                theorems.setdefault(s.name.rsplit(".", 1)[-1], s)
    others = [s for s in slots if s.kind != "theorem"]
    placements: list[Placement | None] = [None] * len(certs)
    pending: list[int] = []
    low = -1  # claims of the next segment lie after this line

    def flush(high: int | None) -> None:
        segment = [s for s in others if s.start > low and (high is None or s.start <= high)]
        result = _align([certs[k] for k in pending], _expand(segment))
        for k, p in zip(pending, result):
            placements[k] = p
        pending.clear()

    for k, cert in enumerate(certs):
        slot = theorems.get(cert.goal)
        if slot is not None:
            flush(slot.block_end)
            placements[k] = Placement("theorem", slot)
            low = max(low, slot.block_end)
        else:
            pending.append(k)
    flush(None)
    return placements  # type: ignore[return-value]
