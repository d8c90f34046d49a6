"""A filter's decision: keep or drop, a named reason, and the scores behind it (reasons are data)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Verdict:
    keep: bool
    reason: str | None = None
    scores: dict = field(default_factory=dict)

    @classmethod
    def ok(cls, **scores) -> "Verdict":
        return cls(True, None, scores)

    @classmethod
    def drop(cls, reason: str, **scores) -> "Verdict":
        return cls(False, reason, scores)

    def __bool__(self) -> bool:  # `if verdict:` reads as "kept"
        return self.keep
