"""Group commit: one fsync makes many writers' transactions durable.

The store commits each write as its own SQLite transaction with `synchronous=NORMAL`: the
commit reaches the WAL file (the OS holds it, so a `kill -9` cannot lose it) without an fsync.
Before a write is answered, `GroupSync.wait` makes it durable: the first writer to arrive
becomes the leader, notes the last committed resourceVersion, and fsyncs the WAL outside the
store's lock; the writers that committed meanwhile wait for that fsync or the next one, while
new writers keep committing. So a disk of N fsyncs per second serves many more than N writes
per second, and no write is answered before it is on disk (as PostgreSQL's and etcd's group
commit do). After each fsync the leader publishes the changes it made durable, in
resourceVersion order, through `publish`: watchers never see a change that is not yet durable.

SQLite itself still syncs the WAL's header when the WAL restarts and syncs the database at each
checkpoint (`synchronous=NORMAL` does), so the sync of the WAL here is the one sync SQLite's
FULL mode would have made per commit; `fdatasync`, as SQLite uses on Linux (the WAL is
rewritten in place after each checkpoint, so its size, the one metadata that matters, rarely
changes).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

Fsync = Callable[[int], None]


class GroupSync:
    def __init__(self, database: Path, committed: int, fsync: Fsync = os.fdatasync) -> None:
        self.database = database
        self.wal = database.with_name(database.name + "-wal")
        self.fsync = fsync
        self.committed = committed  # the last resourceVersion whose transaction has committed
        self.durable = committed  # the last one an fsync has made durable (and published)
        self.fsyncs = 0
        self._cond = threading.Condition(threading.Lock())
        self._leading = False
        self._fd: int | None = None
        self._inode: int | None = None

    def wait(self, rv: int, publish: Callable[[int], None]) -> None:
        """Return once the transaction of `rv` (and every one before it) is durable and
        published. The caller must not hold the store's lock (`publish` takes it)."""
        with self._cond:
            while self.durable < rv:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                target = self.committed
                self._cond.release()
                try:
                    self._sync()
                    publish(target)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
                self.durable = max(self.durable, target)
                self.fsyncs += 1

    def _sync(self) -> None:
        """fsync the WAL file as it is now (reopened when SQLite made a new one); the database
        file when there is no WAL (every change is then in the database, synced by SQLite's
        checkpoint, and a second fsync costs little)."""
        try:
            inode = os.stat(self.wal).st_ino
        except FileNotFoundError:
            fd = os.open(self.database, os.O_RDONLY)
            try:
                self.fsync(fd)
            finally:
                os.close(fd)
            return
        if self._fd is None or inode != self._inode:
            self.close()
            self._fd, self._inode = os.open(self.wal, os.O_RDONLY), inode
        self.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._inode = None
