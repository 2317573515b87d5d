"""Reading a service's JSON log lines while the service is still writing them."""
from __future__ import annotations

import json
from collections.abc import Iterator


def complete_entries(text: str, message: str) -> Iterator[dict]:
    """The entries whose message is `message`, from the whole lines of `text` only: the process may be writing its
    last line as the file is read (a read of a regular file can see half of a write), and that line is whole when
    the file is read again."""
    quoted = json.dumps(message)
    for line in text[: text.rfind("\n") + 1].splitlines():
        if quoted not in line:
            continue
        entry = json.loads(line)
        if entry.get("message") == message:
            yield entry
