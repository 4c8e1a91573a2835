"""Remove deleted records' bytes from a Chroma persist directory's SQLite file (ADR 0013).

Chroma (1.5) keeps every write in ``embeddings_queue`` (its write-ahead log) until the
HNSW index of the collection is next persisted (every ``hnsw:sync_threshold`` writes),
keeps deleted words in its full-text index segments until they are merged, and leaves
deleted rows in freed SQLite pages. :func:`purge_chroma_file`:

1. deletes log rows the metadata segment has applied whose record is gone (the record's
   add and its delete: replaying neither is the same index), and older rows of records
   still present (only the newest upsert of an id is ever replayed);
2. merges the full-text index (``'optimize'``), dropping deleted entries;
3. ``VACUUM``s the file, so no freed page keeps old bytes.

Embedded mode runs it in the memory service after each erasure; in server mode the
client API reaches none of this, so operators run ``mnemo-memory purge-chroma --path``
against the stopped server's directory (``docs/operations.md``). HNSW files hold
vectors and integer labels of deleted records until the index is rebuilt — no text, no
ids.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

#: topic of the row that repairs a log emptied by an earlier purge (no collection reads it)
MARKER_TOPIC = "mnemo://purge-log-marker"

#: how long one purge of the file may take before it is abandoned (and retried later)
PURGE_TIMEOUT_S = 300


def purge_chroma_file(persist_dir: str | Path, collection_name: str) -> dict[str, int]:
    """Purge ``collection_name``'s deleted bytes from ``persist_dir/chroma.sqlite3``."""
    db = sqlite3.connect(Path(persist_dir) / "chroma.sqlite3", timeout=30)
    try:
        db.execute("PRAGMA secure_delete = ON")
        row = db.execute(
            "SELECT s.id, CAST(m.seq_id AS INTEGER), c.id FROM collections c "
            "JOIN segments s ON s.collection = c.id AND s.scope = 'METADATA' "
            "LEFT JOIN max_seq_id m ON m.segment_id = s.id WHERE c.name = ?",
            (collection_name,),
        ).fetchone()
        if row is None or row[1] is None:
            return {}
        segment, applied, coll_id = row
        topic = f"%/{coll_id}"
        # The log's newest row always stays: ``seq_id`` is the table's rowid (no
        # AUTOINCREMENT), so deleting the newest row would hand the next write a seq_id
        # the segments have already passed, and they would never apply it (every later
        # write lost). The newest row never holds erased text: a record's delete comes
        # after its add, and a delete row holds only the record's (random) id.
        newest = db.execute("SELECT MAX(seq_id) FROM embeddings_queue").fetchone()[0]
        passed = db.execute("SELECT MAX(CAST(seq_id AS INTEGER)) FROM max_seq_id").fetchone()[0]
        repaired = 0
        if passed is not None and (newest is None or int(newest) < int(passed)):
            # a log emptied by a purge before this fix: the next writes would still get
            # ids the segments have passed. A marker row no collection reads (its topic is
            # none of theirs) moves the rowid past them.
            db.execute(
                "INSERT INTO embeddings_queue (seq_id, operation, topic, id) VALUES (?, 3, ?, ?)",
                (int(passed), MARKER_TOPIC, MARKER_TOPIC),
            )
            newest, repaired = int(passed), 1
        keep = applied if newest is None else min(applied, int(newest) - 1)
        gone = db.execute(
            "DELETE FROM embeddings_queue WHERE topic LIKE ? AND seq_id <= ? AND id NOT IN "
            "(SELECT embedding_id FROM embeddings WHERE segment_id = ?)",
            (topic, keep, segment),
        ).rowcount
        old = db.execute(
            "DELETE FROM embeddings_queue WHERE topic LIKE ? AND seq_id <= ? AND seq_id "
            "NOT IN (SELECT MAX(seq_id) FROM embeddings_queue WHERE topic LIKE ? GROUP BY id)",
            (topic, keep, topic),
        ).rowcount
        db.execute(
            "INSERT INTO embedding_fulltext_search(embedding_fulltext_search) VALUES ('optimize')"
        )
        db.commit()
        db.execute("VACUUM")
        out = {"log_rows_deleted": gone, "log_rows_superseded": old}
        return out | ({"log_repaired": repaired} if repaired else {})
    finally:
        db.close()


def purge_in_child(persist_dir: str | Path, collection_name: str) -> dict[str, int]:
    """:func:`purge_chroma_file` in a child process. Embedded Chroma holds the file open
    through its own copy of SQLite; two SQLite libraries in one process do not see each
    other's POSIX locks (they are per process), so a purge from this process could race
    Chroma's own writes. Across processes the file locks serialise them."""
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", __name__, str(persist_dir), collection_name],
        capture_output=True,
        text=True,
        timeout=PURGE_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"chroma purge failed: {done.stderr.strip()[-500:]}")
    return {str(k): int(v) for k, v in json.loads(done.stdout or "{}").items()}


if __name__ == "__main__":
    print(json.dumps(purge_chroma_file(sys.argv[1], sys.argv[2])))  # read by purge_in_child
