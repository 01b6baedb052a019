"""Publishing a folder atomically: written beside its place under a hidden name, then
renamed into place, so a reader (the portal) sees the whole old folder or the whole
new one, never half a month.

Replacing an existing folder is two renames (old aside, new in) with nothing written
between them; a reader that misses the folder in that instant retries. (Visibility is
atomic; durability after a power cut is the file system's.)
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, TypeVar

T = TypeVar("T")


def publish_atomically(target: Path, write: Callable[[Path], T]) -> T:
    """Call ``write(staging)`` on an empty hidden folder beside ``target``, then put it in
    ``target``'s place. On an error the staging folder is removed and ``target`` is as
    it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.staging-{tag}"
    staging.mkdir()
    try:
        result = write(staging)
        old = target.parent / f".{target.name}.old-{tag}"
        replaced = target.exists()
        if replaced:
            os.rename(target, old)
        try:
            os.rename(staging, target)
        except OSError:
            if replaced:
                os.rename(old, target)
            raise
        if replaced:
            shutil.rmtree(old, ignore_errors=True)
        return result
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
