"""Group commit: one fsync makes many writers' transactions durable.

The store stages each write as one statement in an open SQLite transaction
(`synchronous=NORMAL`). Before a write is answered, `GroupSync.wait` makes it durable: the
first writer to arrive becomes the leader, commits every write staged so far as one
transaction (into the WAL file: from then on the OS holds it, so a `kill -9` cannot lose it),
and fsyncs the WAL outside the store's lock; the writers staged meanwhile wait for that fsync
or the next one, while new writers keep staging. So a disk of N fsyncs per second serves many more than N writes
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
    def __init__(self, database: Path, durable: int, fsync: Fsync = os.fdatasync) -> None:
        self.database = database
        self.wal = database.with_name(database.name + "-wal")
        self.fsync = fsync
        self.durable = durable  # the last resourceVersion an fsync has made durable (and published)
        self.fsyncs = 0
        self._cond = threading.Condition(threading.Lock())
        self._leading = False
        self._fd: int | None = None
        self._inode: int | None = None

    def wait(self, rv: int, commit: Callable[[], int], publish: Callable[[int], None]) -> None:
        """Return once the write of `rv` (and every one before it) is durable and published.
        The leader runs `commit` (the writes staged so far, one transaction; it returns the
        last resourceVersion committed), fsyncs, then `publish`es. The caller must not hold
        the store's lock (`commit` and `publish` take it)."""
        with self._cond:
            while self.durable < rv:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                self._cond.release()
                try:
                    target = commit()
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
