"""Nothing the portal shows, serves or logs may carry a CPR number or a pseudonym.

The pipeline already publishes none; this is the portal's own gate on top (defence in
depth), also for text that users type (usernames on a failed login, comments, URLs).
"""

from __future__ import annotations

import re

from pipelines.privacy import mask

HIDDEN_PSEUDONYM = "<hidden>"
# A pseudonym is HMAC-SHA256 as 64 hex digits; any 32+ hex run is hidden alike.
_PSEUDONYM = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}(?![0-9A-Fa-f])")


def scrub(text: object) -> str:
    """``text`` with CPR-shaped values and pseudonym-shaped hex runs hidden."""
    return _PSEUDONYM.sub(HIDDEN_PSEUDONYM, mask("" if text is None else text))

