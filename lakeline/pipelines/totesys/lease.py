"""The totesys extraction lease: one extraction at a time, across processes, crash-safe.

Two extractions at once would both claim the next packet id of a table, so every extraction
(``lakeline extract``, a re-read, a tick of ``lakeline serve``'s schedule) first puts the item
``totesys/extract_lease`` if it is absent, with an expiry ``lease_seconds`` ahead. The holder
renews it as it goes (before each table and before each packet is published) and deletes it at
the end. A killed holder stops renewing, so its lease expires and the next extraction proceeds:
a crash blocks extraction at most ``lease_seconds``.

A renewal is a compare-and-swap on the version the holder last wrote, after checking the item
still carries the holder's ``run_id`` (an expired lease taken over restarts at version 1, so the
version alone could be mistaken for one's own). A holder that lost its lease stops before
publishing anything.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Final

from lakeline.errors import ConditionFailed, LockedError
from lakeline.ports.state import Item, StateStore

LEASE_TABLE: Final = "totesys"
LEASE_KEY: Final = "extract_lease"


class Lease:
    """The extraction lease held by ``run_id`` (see the module docstring)."""

    def __init__(self, state: StateStore, run_id: str, seconds: float, info: dict[str, Any]) -> None:
        self.state = state
        self.run_id = run_id
        self.seconds = seconds
        self.data = {**info, "run_id": run_id}
        self.item: Item | None = None

    def acquire(self) -> None:
        """Take the lease, or raise :class:`LockedError` naming the extraction holding it."""
        try:
            self.item = self.state.put(LEASE_TABLE, LEASE_KEY, self.data, if_absent=True,
                                       expires_at=time.time() + self.seconds)
        except ConditionFailed:
            holder = self.state.get(LEASE_TABLE, LEASE_KEY)
            who = holder.data if holder else "it just ended"
            raise LockedError(f"another totesys extraction is running ({who}); try again when it has "
                              "finished") from None

    def renew(self) -> None:
        """Push the expiry ``seconds`` ahead; :class:`LockedError` if the lease was lost (it
        expired and another extraction took it)."""
        current = self.state.get(LEASE_TABLE, LEASE_KEY)
        if self.item is None or current is None or current.data.get("run_id") != self.run_id:
            raise LockedError(f"totesys extraction {self.run_id} lost its lease (it expired after "
                              f"{self.seconds:g} s without renewal); nothing more is published")
        try:
            self.item = self.state.put(LEASE_TABLE, LEASE_KEY, self.data, expected_version=current.version,
                                       expires_at=time.time() + self.seconds)
        except ConditionFailed:
            raise LockedError(f"totesys extraction {self.run_id} lost its lease; nothing more is "
                              "published") from None

    def release(self) -> None:
        """Delete the lease if it is still this holder's."""
        current = self.state.get(LEASE_TABLE, LEASE_KEY)
        if current is None or current.data.get("run_id") != self.run_id:
            return  # expired, maybe taken over: not ours to delete
        with contextlib.suppress(ConditionFailed):
            self.state.delete(LEASE_TABLE, LEASE_KEY, expected_version=current.version)
