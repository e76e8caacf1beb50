"""The text a stream pipeline reads from a landed object: the object itself, or the text of a
gzip object, decompressed once at ingest and staged in the ``tmp`` zone.

Chunk messages name byte ranges of text, and a gzip stream cannot be read from the middle, so
ingest decompresses a gzip object (a ``.gz`` key or the gzip magic bytes; streamed, memory
holds one buffer) to ``tmp/gunzip/<object id>/<name without .gz>`` and plans the chunks over
that text; each message carries the staged location (:attr:`ChunkMessage.text_key`). Everything
a user sees keeps the landed key: rejects, ``_source``, lineage and the run log, with the line
numbers and byte offsets of the decompressed text. The staged text is deleted once the object's
load is complete (or at once when the object is dropped).

Before any chunk is planned, the start of the text is sniffed
(:func:`lakeline.stages.textinput.problem`): an object that is not UTF-8 text (binary,
UTF-16, a truncated gzip, another compression) raises
:class:`~lakeline.stages.textinput.UnreadableInput`, which ingest turns into one FAILED object
with its reason instead of a reject per line.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from lakeline.lake import Lake
from lakeline.stages.textinput import SNIFF_BYTES, UnreadableInput, is_gzip, problem, text_path

PREFIX = "gunzip/"


@dataclass(frozen=True)
class Text:
    """Where an object's text is read: ``zone``/``key``, ``size`` bytes; ``created`` when this
    call staged it."""

    zone: str
    key: str
    size: int
    created: bool = False

    @property
    def staged(self) -> bool:
        """True when the text is a decompressed copy in ``tmp``."""
        return self.zone == "tmp"


def staged_key(oid: str, key: str) -> str:
    """The ``tmp`` key of the decompressed text of object ``oid`` (landed as ``key``)."""
    name = key.rsplit("/", 1)[-1]
    return f"{PREFIX}{oid}/{name[:-3] if name.lower().endswith('.gz') else name}"


def readable_text(lake: Lake, key: str, size: int, oid: str, *, fmt: str) -> Text:
    """The text of the landed object ``key`` (``size`` bytes, object id ``oid``) for a pipeline
    reading ``fmt``: a Parquet object as it is; a gzip object decompressed and staged (kept
    when staged already: ingest may run again after a crash); anything else as it is. Raises
    :class:`UnreadableInput` (naming ``key``) when the text is not UTF-8 text."""
    if fmt == "parquet" or size == 0:
        return Text("landing", key, size)
    head = lake.store.get_range("landing", key, 0, min(size, SNIFF_BYTES))
    if not is_gzip(key, head[:2]):
        why = problem(head)
        if why is not None:
            raise UnreadableInput(f"{key}: {why}")
        return Text("landing", key, size)
    staged = staged_key(oid, key)
    if lake.store.exists("tmp", staged):
        return Text("tmp", staged, lake.store.head("tmp", staged).size)
    with tempfile.TemporaryDirectory(dir=lake.work_dir) as work:
        local = lake.store.local_path("landing", key)
        if local is None:  # a remote store: one local copy to decompress from
            local = Path(work) / "object.gz"
            local.write_bytes(lake.store.get("landing", key))
        path = text_path(local, key, Path(work))
        info = lake.store.put_file("tmp", staged, path, move=True)
    return Text("tmp", staged, info.size, created=True)


def drop_staged(lake: Lake, zone: str, key: str) -> None:
    """Delete a staged text (nothing when the text is the landed object itself)."""
    if zone == "tmp" and key.startswith(PREFIX):
        lake.store.delete("tmp", key)


__all__ = ["PREFIX", "Text", "UnreadableInput", "drop_staged", "readable_text", "staged_key"]
