"""What a command did, as values the CLI renders and library callers inspect."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from stalwart.transaction import RecoveryReport

__all__ = ["Action", "DistResult", "CommandResult"]


class Action(enum.StrEnum):
    """What happened to one distribution."""

    INSTALLED = "installed"
    UPGRADED = "upgraded"  # another version was installed before (also a downgrade)
    REINSTALLED = "reinstalled"
    UNCHANGED = "unchanged"  # already installed at that version; nothing done
    UNINSTALLED = "uninstalled"


@dataclass(frozen=True, slots=True)
class DistResult:
    name: str
    version: str
    action: Action
    previous: str | None = None  # the version replaced, for UPGRADED
    files: int = 0


@dataclass
class CommandResult:
    """Everything one install or uninstall did, in the order it happened."""

    dists: list[DistResult] = field(default_factory=list)
    recovered: list[RecoveryReport] = field(default_factory=list)
    compile_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    resolved: int = 0  # distributions resolution settled on (installed or kept)
    downloaded: int = 0  # wheels fetched from an index or URL (from the cache or the network)
    dry_run: bool = False  # nothing was changed: dists say what would have been
    placed: str = ""  # how files came from the cache: "11425 hardlink", "3 clone, 2 copy"...
    #: Seconds per phase ("stage", "compile", "commit"): where the time of a command went.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> list[DistResult]:
        return [d for d in self.dists if d.action is not Action.UNCHANGED]
