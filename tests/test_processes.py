"""Real processes against one index: a killed indexer, two writers at once, and watch."""

from __future__ import annotations

import json
import os
import queue
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from chronsearch import ChronicleIndex, update

from .corpus import write_corpus

FILES, EVENTS = 24, 40  # about 1,000 events: an update takes a second or two


def chronsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "chronsearch", *args]


def texts_by_source(index: Path) -> dict[str, list[str]]:
    """Every indexed event's text, per file, in file order; the index must answer a query too."""
    with ChronicleIndex.open(index) as ix:
        assert ix.search("zone").total > 0
        hits = sorted(ix.search("", limit=1_000_000).hits, key=lambda h: (h.source, h.line))
    found: dict[str, list[str]] = {}
    for hit in hits:
        found.setdefault(hit.source, []).append(hit.text)
    return found


def test_a_killed_indexer_leaves_every_file_old_or_new(tmp_path: Path):
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    versions = [write_corpus(tmp_path / f"v{v}", files=FILES, events=EVENTS, version=v) for v in (0, 1)]
    write_corpus(seeds, files=FILES, events=EVENTS, version=0)
    started = time.monotonic()
    subprocess.run(chronsearch("index", "--seeds", str(seeds), "--index", str(index), "-q"), check=True)
    duration = time.monotonic() - started
    rng = random.Random(20261123)
    current = 0
    for _ in range(6):
        target = 1 - current
        write_corpus(seeds, files=FILES, events=EVENTS, version=target)
        proc = subprocess.Popen(
            chronsearch("index", "--seeds", str(seeds), "--index", str(index), "-q"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for source, texts in texts_by_source(index).items():
            assert texts in (versions[current][source], versions[target][source]), source
        # The next run needs no wait (the kill freed the lock) and repairs the rest.
        repair = subprocess.run(
            chronsearch("index", "--seeds", str(seeds), "--index", str(index), "--wait", "0", "--json"),
            capture_output=True,
            text=True,
        )
        assert repair.returncode == 0, repair.stderr
        assert texts_by_source(index) == versions[target]
        current = target


def test_two_writers_and_searches_at_once(tmp_path: Path):
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    write_corpus(seeds, files=FILES, events=EVENTS, version=0)
    update(seeds, index)
    with ChronicleIndex.open(index) as ix:
        expected = ix.search("zone").total
    write_corpus(seeds, files=FILES, events=EVENTS, version=1)
    writers = [
        subprocess.Popen(
            chronsearch("index", "--seeds", str(seeds), "--index", str(index), "--full", "--wait", "120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    searches = 0
    while any(w.poll() is None for w in writers):
        with ChronicleIndex.open(index) as ix:
            # Every version of the corpus has the same number of "zone" events.
            assert ix.search("zone", limit=3).total == expected
        searches += 1
    outputs = [w.communicate() for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    waited = [err for _, err in outputs if "waiting for another process to finish writing" in err]
    assert len(waited) == 1, outputs
    assert searches > 0
    assert texts_by_source(index)["2000-chronicle-000.txt"][1] == (
        "Event 1 of file 0, version 1: a Dalian high-tech zone company opened a centre."
    )


def _lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))


def _next_line(sink: queue.Queue, timeout: float = 30.0) -> str:
    return sink.get(timeout=timeout)


def test_watch_follows_edits_additions_and_deletions(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    proc = subprocess.Popen(
        chronsearch("watch", "--seeds", str(seeds_copy), "--index", str(index), "--debounce", "50"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A shell runs background jobs with SIGINT ignored, and a child inherits
        # that: the watcher must get Ctrl-C as a terminal would send it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    try:
        assert _next_line(err).startswith(f"chronsearch: watching {seeds_copy}")
        assert "0 changed, 3 added, 0 removed, 0 unchanged files · +92 −0 events" in _next_line(out)

        en = seeds_copy / "2014-industrial-development-events.en.txt"
        en.write_text(en.read_text().replace("Toshiba", "Hitachi"))
        assert "1 changed, 0 added, 0 removed, 2 unchanged files · +35 −35 events" in _next_line(out)

        (seeds_copy / "2018.txt").write_text("2018 Events\n\nA delegation from Kyoto visited.\n")
        assert "0 changed, 1 added, 0 removed, 3 unchanged files · +1 −0 events" in _next_line(out)

        (seeds_copy / "2017-park-chronicle.ja.txt").unlink()
        assert "0 changed, 0 added, 1 removed, 3 unchanged files · +0 −57 events, 36 in all" in _next_line(out)

        bad = seeds_copy / "bad.txt"
        bad.write_text("no year here\n\nan event\n")
        assert _next_line(err) == f"chronsearch: error: {bad}:1: no year in the title or the file name"
        assert "0 changed, 0 added, 0 removed, 3 unchanged files, 1 with errors · +0 −0 events, 36 in all" in _next_line(out)

        with ChronicleIndex.open(index) as ix:
            assert (ix.search("Hitachi").total, ix.search("Kyoto").total) == (1, 1)
            # The Japanese chronicle is gone: 京都 finds only Kyoto, through the glossary.
            assert (ix.search("京都", glossary=False).total, ix.search("京都").total) == (0, 1)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_index_json_from_a_process(tmp_path: Path, seeds_copy: Path):
    result = subprocess.run(
        chronsearch("index", "--seeds", str(seeds_copy), "--index", str(tmp_path / "i"), "--json"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout)["events_total"] == 92


def _run_with_terminal_stderr(args: list[str]) -> str:
    """Run ``args`` with stderr on a pseudo-terminal; returns what it wrote there."""
    leader, follower = os.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower)
    # The follower stays open here until the end: once every end of it is
    # closed, Linux may drop what the leader has not read yet.
    chunks = []
    while True:
        exited = proc.poll() is not None
        while select.select([leader], [], [], 0.05)[0]:
            chunks.append(os.read(leader, 4096))
        if exited:
            break
    os.close(follower)
    os.close(leader)
    assert proc.wait() == 0
    return b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_only_on_a_terminal_and_not_when_quiet(tmp_path: Path):
    seeds = tmp_path / "seeds"
    # The bar waits a second before it shows: these events take a few to index.
    write_corpus(seeds, files=FILES, events=5 * EVENTS)
    args = chronsearch("index", "--seeds", str(seeds), "--index", str(tmp_path / "index"), "--full")
    shown = _run_with_terminal_stderr(args)
    assert "indexing" in shown and "events/s" in shown
    assert "events/s" not in _run_with_terminal_stderr([*args, "--quiet"])
    piped = subprocess.run(args, capture_output=True, text=True, check=True)
    assert piped.stderr == "chronsearch: rebuilt the whole index: asked for (--full)\n"
