"""Rebuild-on-change at scale: incremental updates, the analysis cache, crash safety.

    python benchmarks/update_bench.py                  # 1,000 files of 30 events
    python benchmarks/update_bench.py --crash 20       # and kill the indexer 20 times

The corpus is cut from ``../shared/scale`` (Japanese prose and English news, in
turn) into a scratch folder outside the project. Every figure comes with a
baseline from the same run: SQLite FTS5 doing the same work (full build, and
replacing one file's rows), and the full build without the analysis cache.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import cache_dir, write_split_corpus  # noqa: E402
from chronsearch import ChronicleIndex, is_fresh, update  # noqa: E402
from chronsearch.chronicle import find_chronicles, read_chronicle  # noqa: E402


def cli(*args: str) -> tuple[float, dict]:
    """Run ``chronsearch index --json`` in a new process; (wall seconds, its JSON)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "chronsearch", "index", "--json", "--quiet", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return time.perf_counter() - started, json.loads(out)


def fts5_build(db: Path, seeds: Path) -> float:
    """Seconds to load every event into an FTS5 table (unicode61 for all; trigram would be slower)."""
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("CREATE VIRTUAL TABLE events USING fts5(text, source UNINDEXED, tokenize='trigram')")
    for path in find_chronicles(seeds):
        rows = [(e.text, e.source) for e in read_chronicle(path, root=seeds)]
        con.executemany("INSERT INTO events VALUES (?, ?)", rows)
    con.commit()
    con.close()
    return time.perf_counter() - started


def fts5_replace(db: Path, seeds: Path, path: Path) -> float:
    """Seconds for FTS5 to replace one file's events, as a new process would (open, parse, write)."""
    started = time.perf_counter()
    con = sqlite3.connect(db)
    source = path.relative_to(seeds).as_posix()
    con.execute("DELETE FROM events WHERE source = ?", (source,))
    con.executemany("INSERT INTO events VALUES (?, ?)", [(e.text, e.source) for e in read_chronicle(path, root=seeds)])
    con.commit()
    con.close()
    return time.perf_counter() - started


def row(name: str, ours: str, base: str = "", ratio: str = "") -> None:
    print(f"| {name} | {ours} | {base} | {ratio} |")


def edit(path: Path, marker: str) -> None:
    """Change one event of the file (its last line)."""
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(text + f" {marker}\n", encoding="utf-8")


def texts_of(ix: ChronicleIndex, source: str) -> list[str]:
    hits = ix.search(f'source:"{source}"', limit=100_000).hits
    return [h.text for h in sorted(hits, key=lambda h: h.line)]


def crash_test(seeds: Path, index: Path, kills: int) -> None:
    """Kill an update of 5% of the files at random moments; each file must be old or new after it."""
    files = find_chronicles(seeds)
    rng = random.Random(7)
    loc = ("--seeds", str(seeds), "--index", str(index))

    def change_some(tag: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        chosen = rng.sample(files, max(1, len(files) // 20))
        before = {p.relative_to(seeds).as_posix(): [e.text for e in read_chronicle(p, root=seeds)] for p in chosen}
        for p in chosen:
            edit(p, tag)
        after = {p.relative_to(seeds).as_posix(): [e.text for e in read_chronicle(p, root=seeds)] for p in chosen}
        return before, after

    change_some("timing")
    duration, timed = cli(*loc)
    print(f"crash test: an update of {timed['changed_files']} changed files takes {duration:.1f} s; killing within that")
    ok = 0
    for round_ in range(kills):
        before, after = change_some(f"crash{round_}")
        proc = subprocess.Popen(
            [sys.executable, "-m", "chronsearch", "index", "-q", *loc],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        delay = rng.uniform(0.0, duration)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with ChronicleIndex.open(index) as ix:
            good = ix.search("zone OR 事").total > 0
            states = [texts_of(ix, s) in (before[s], after[s]) for s in before]
            new = sum(texts_of(ix, s) == after[s] for s in before)
        good = good and all(states)
        repaired_s, repaired = cli(*loc, "--wait", "0")
        with ChronicleIndex.open(index) as ix:
            good = good and all(texts_of(ix, s) == after[s] for s in after)
        ok += good
        print(
            f"  kill {round_ + 1:2d} after {delay:5.2f} s: opens and answers, every file old or new: {good}"
            f" ({new} of {len(after)} new); the next run repaired {repaired['changed_files']} files"
            f" in {repaired_s:.1f} s"
        )
    print(f"crash test: {ok}/{kills} indexes opened, answered, held old-or-new files, and were repaired")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--events-per-file", type=int, default=30)
    parser.add_argument("--crash", type=int, default=0, help="kill the indexer this many times")
    parser.add_argument("--work", type=Path, default=cache_dir() / "update-bench")
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    seeds, index, db = args.work / "seeds", args.work / "index", args.work / "fts5.sqlite"
    events = write_split_corpus(seeds, files=args.files, events_per_file=args.events_per_file)
    files = find_chronicles(seeds)
    mb = sum(p.stat().st_size for p in files) / 1e6
    print(f"corpus: {len(files)} files, {events} events, {mb:.1f} MB in {seeds}\n")
    print("| step | chronsearch | SQLite FTS5 (trigram) | ratio |")
    print("|---|---|---|---|")

    started = time.perf_counter()
    stats = update(seeds, index, cache=False)
    cold = time.perf_counter() - started
    base = fts5_build(db, seeds)
    row(
        "full build, no analysis cache",
        f"{cold:.1f} s ({stats.events_total / cold:,.0f} events/s)",
        f"{base:.2f} s",
        f"{cold / base:.0f}×",
    )
    started = time.perf_counter()
    update(seeds, index, full=True)  # fills the cache
    filling = time.perf_counter() - started
    started = time.perf_counter()
    stats = update(seeds, index, full=True)
    warm = time.perf_counter() - started
    row("full rebuild, filling the cache", f"{filling:.1f} s", "", f"{filling / cold:.2f}× of no cache")
    row(
        "full rebuild, warm cache",
        f"{warm:.1f} s ({stats.events_total / warm:,.0f} events/s)",
        "",
        f"{cold / warm:.1f}× faster than no cache",
    )

    loc = ("--seeds", str(seeds), "--index", str(index))
    target = files[len(files) // 2]
    edit(target, "edited")
    wall, one = cli(*loc)
    base = fts5_replace(db, seeds, target)
    row(
        f"change 1 file: {one['changed_files']} changed, {one['unchanged_files']} unchanged",
        f"{wall:.2f} s (process), {one['took_ms']:.0f} ms (update)",
        f"{base * 1000:.0f} ms",
        f"{wall / base:.0f}×",
    )
    wall, none = cli(*loc)
    row(
        f"change nothing: {none['unchanged_files']} unchanged",
        f"{wall:.2f} s (process), {none['took_ms']:.0f} ms (update)",
    )

    doomed = files[1]
    source = doomed.relative_to(seeds).as_posix()
    with ChronicleIndex.open(index) as ix:
        before = (ix.search(f'source:"{source}"').total, ix.stats().source.get(source))
    doomed.unlink()
    wall, gone = cli(*loc)
    with ChronicleIndex.open(index) as ix:
        after = (ix.search(f'source:"{source}"').total, ix.stats().source.get(source))
    row(
        f"delete 1 file: {gone['removed_files']} removed, −{gone['events_removed']} events",
        f"{wall:.2f} s; search/stats before {before}, after {after}",
    )

    repeats = 200
    started = time.perf_counter()
    for _ in range(repeats):
        is_fresh(seeds, index)
    check = (time.perf_counter() - started) / repeats
    seeds_index = args.work / "seeds-index"
    update(ROOT / "seeds", seeds_index)
    started = time.perf_counter()
    for _ in range(repeats):
        is_fresh(ROOT / "seeds", seeds_index)
    seeds_check = (time.perf_counter() - started) / repeats
    row("staleness check (search's refresh)", f"{seeds_check * 1000:.2f} ms on the seeds, {check * 1000:.1f} ms on {len(files)} files")
    print()
    if args.crash:
        crash_test(seeds, index, args.crash)


if __name__ == "__main__":
    main()
