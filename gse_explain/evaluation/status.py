"""Is a store complete, and does it hold what it claims? :func:`store_status` answers both.

It reads the manifest and selection, lists which batches are stored and which are missing, summarises each
process (shard) that wrote batches (batches, attack seconds, interruptions), and with ``verify=True``
re-reads every batch file's images and checks them against the hashes the files record (the same checks
every read makes, for all batches at once). ``python -m gse_explain.status STORE ...`` prints it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .results import load_results
from .store import ResultStore, StoreError

__all__ = ["StoreStatus", "store_status"]


@dataclass
class StoreStatus:
    """What :func:`store_status` found. ``problems`` is empty when the store is complete and consistent."""

    path: str
    attack: str
    model: str
    mode: str
    expected_batches: int | None
    stored_batches: list[int]
    missing_batches: list[int]
    examples: int
    shards: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.expected_batches is not None and not self.missing_batches and not self.problems

    def describe(self) -> str:
        """A few lines for people: the run, its completeness, each shard, each problem."""
        state = "complete" if self.complete else "INCOMPLETE" if not self.problems else "PROBLEMS"
        lines = [f"{self.path}: {self.attack} {self.mode} on {self.model}: {state}; "
                 f"{len(self.stored_batches)} of {self.expected_batches if self.expected_batches is not None else '?'} "
                 f"batches, {self.examples} examples"]
        if self.missing_batches:
            shown = ", ".join(map(str, self.missing_batches[:20])) + (" …" if len(self.missing_batches) > 20 else "")
            lines.append(f"  missing batches: {shown}")
        for name, info in sorted(self.shards.items()):
            interrupted = info.get("interrupted")
            note = f", interrupted in batch {interrupted.get('batch')} ({interrupted.get('by')})" if interrupted else ""
            lines.append(f"  {name}: {len(info.get('batches_written', []))} batches, "
                         f"{float(info.get('attack_seconds', 0.0)):.0f} s attacking{note}")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def store_status(path: str | os.PathLike, *, verify: bool = False) -> StoreStatus:
    """The :class:`StoreStatus` of the store at ``path`` (StoreError if it is not a readable store at all).

    ``verify=True`` also reads every batch's images and checks their recorded SHA-256 (slower: it
    decompresses every image); integrity errors become ``problems`` instead of exceptions.
    """
    store = ResultStore.open(path)
    config = store.config
    expected = store.expected_batches()
    stored = store.completed_batches()
    status = StoreStatus(str(store.path), str(config.get("attack")), str(config.get("model")), str(config.get("mode")),
                         expected, stored, sorted(set(range(expected or 0)) - set(stored)), 0, store.shard_infos())
    try:
        results = load_results(path)
        status.examples = int(results.records["example"].nunique()) if len(results.records) else 0
        for index in stored if verify else ():
            results.images(index)
    except StoreError as exc:
        status.problems.append(str(exc))
    if expected is None:
        status.problems.append("no selection.json: the run never got past selecting its examples")
    return status
