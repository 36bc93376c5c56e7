"""Where sd-scripts is, which commit it is at, and which script trains which model family."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PINNED_COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"
TRAINING_SCRIPTS = {"sd15": "train_network.py", "sdxl": "sdxl_train_network.py"}
# An exported tree (no .git) records its commit here; see README "Use a local sd-scripts".
COMMIT_MARKER = ".lora_pipeline_commit"


@dataclass(frozen=True)
class CheckoutStatus:
    path: Path
    present: bool
    commit: str | None
    pinned: str = PINNED_COMMIT

    @property
    def matches_pin(self) -> bool:
        return self.commit == self.pinned

    def describe(self) -> str:
        if not self.present:
            return (f"not found at {self.path}: run `git submodule update --init` or point "
                    "--sd-scripts / LORA_PIPELINE_SD_SCRIPTS at a checkout")
        if self.commit is None:
            return f"{self.path} (commit unknown; pinned {self.pinned[:10]})"
        if self.matches_pin:
            return f"{self.path} at {self.commit[:10]} (the pinned commit)"
        return f"{self.path} at {self.commit[:10]}, but the pin is {self.pinned[:10]}: results may differ"


def checkout_commit(path: Path) -> str | None:
    marker = path / COMMIT_MARKER
    if marker.is_file():
        return marker.read_text().strip() or None
    if not (path / ".git").exists():
        return None
    try:
        completed = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                                   text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None if completed.returncode == 0 else None


def inspect_checkout(path: Path) -> CheckoutStatus:
    present = (path / TRAINING_SCRIPTS["sd15"]).is_file()
    return CheckoutStatus(path=path, present=present, commit=checkout_commit(path) if present else None)
