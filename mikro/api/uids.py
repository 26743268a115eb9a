"""Object uids: random (version 4) UUIDs, as Kubernetes' `uuid.NewRandom`, from the OS's
random source read a page at a time.

`uuid.uuid4()` reads 16 bytes with a syscall of its own, and in a busy API server each such
call gives up the GIL and waits to get it back (about a millisecond under the create load of
`bench/run api`); one read of 4 KB serves 256 uids.
"""

from __future__ import annotations

import os
import threading

_BATCH = 256
_lock = threading.Lock()
_pool = b""


def uuid4() -> str:
    global _pool
    with _lock:
        if not _pool:
            _pool = os.urandom(16 * _BATCH)
        raw, _pool = _pool[:16], _pool[16:]
    # uuid.UUID(bytes=raw, version=4), spelt out: the version and variant bits, then hex
    h = (raw[:6] + bytes((raw[6] & 0x0F | 0x40, raw[7], raw[8] & 0x3F | 0x80)) + raw[9:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
