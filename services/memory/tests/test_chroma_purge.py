"""The embedded-Chroma purge (ADR 0013) against a real persistent Chroma: it removes the
bytes of deleted records and never costs a later write, in the running client or after a
restart. Chroma's log ids are SQLite rowids: a purge that deleted the log's newest row made
the next writes reuse ids the segments had already passed, and Chroma skipped them."""

from __future__ import annotations

import random
import subprocess
import sys

import chromadb
from mnemo_memory.stores.vector.chroma_purge import purge_in_child

NAME = "purge-test"
REOPEN = (
    "import sys, chromadb; c = chromadb.PersistentClient(path=sys.argv[1]);"
    "print(*sorted(c.get_collection(sys.argv[2]).get()['ids']))"
)


def vec() -> list[float]:
    return [random.random() for _ in range(8)]


def add(coll, ids: list[str], user: str) -> None:
    coll.add(
        ids=ids,
        embeddings=[vec() for _ in ids],
        documents=[f"text of {i}" for i in ids],
        metadatas=[{"user_id": user} for _ in ids],
    )


def test_writes_after_a_purge_are_applied_and_survive_a_restart(tmp_path) -> None:
    path = str(tmp_path / "chroma")
    coll = chromadb.PersistentClient(path=path).get_or_create_collection(NAME)
    add(coll, [f"gone{i}" for i in range(10)], "erased-user")
    coll.delete(ids=[f"gone{i}" for i in range(10)])
    purged = purge_in_child(path, NAME)  # every applied row of the log is a deleted record's
    assert purged["log_rows_deleted"] >= 19
    assert b"erased-user" not in (tmp_path / "chroma" / "chroma.sqlite3").read_bytes()

    add(coll, ["b1", "b2", "b3"], "bystander")
    assert sorted(coll.get()["ids"]) == ["b1", "b2", "b3"]
    coll.delete(ids=["b1"])
    assert sorted(coll.get(where={"user_id": "bystander"})["ids"]) == ["b2", "b3"]
    purge_in_child(path, NAME)
    add(coll, ["c1"], "later")
    assert sorted(coll.get()["ids"]) == ["b2", "b3", "c1"]
    hits = coll.query(query_embeddings=[vec()], n_results=3)["ids"][0]
    assert sorted(hits) == ["b2", "b3", "c1"]

    # a restart: a new process opens the directory and replays the log
    out = subprocess.run(
        [sys.executable, "-c", REOPEN, path, NAME], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["b2", "b3", "c1"]
    assert b"text of b1" not in (tmp_path / "chroma" / "chroma.sqlite3").read_bytes()


def test_a_log_emptied_by_the_old_purge_is_repaired(tmp_path) -> None:
    """A directory purged before the fix (the log's newest row deleted): the next purge
    moves the log's ids past the segments', so writes are applied again."""
    import sqlite3

    path = str(tmp_path / "chroma")
    coll = chromadb.PersistentClient(path=path).get_or_create_collection(NAME)
    add(coll, ["a1", "a2"], "u")
    coll.delete(ids=["a1", "a2"])
    db = sqlite3.connect(tmp_path / "chroma" / "chroma.sqlite3")
    db.execute("DELETE FROM embeddings_queue")  # what the purge before the fix left
    db.commit()
    db.close()
    add(coll, ["lost"], "u")
    assert coll.get()["ids"] == []  # the damage the old purge did: the write is skipped

    assert purge_in_child(path, NAME).get("log_repaired") == 1
    add(coll, ["kept"], "u")
    assert coll.get()["ids"] == ["kept"]
    out = subprocess.run(
        [sys.executable, "-c", REOPEN, path, NAME], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["kept"]
    assert "log_repaired" not in purge_in_child(path, NAME)  # once
