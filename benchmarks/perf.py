"""Indexing and query performance at scale, next to an SQLite FTS5 baseline.

Run from the project root; the corpora sit next to the project, in ``../shared/scale``::

    python benchmarks/perf.py                                   # 10,000 events of each corpus
    python benchmarks/perf.py --events 100000 --json perf-100k.json   # en-news has 74,399: all of it
    python benchmarks/perf.py --events all --corpora en-prose,ja-text  # 300,000 each
    python benchmarks/perf.py --events 10000 --profile facets   # and cProfile one category
    python benchmarks/perf.py --events 300 --queries 5 --repeat 1 --cold-repeat 1   # a quick look

It prints one table per corpus (both engines, and chronsearch/FTS5 for every
row), cold processes on the repo's seeds, and how far hit counts agree;
``--json FILE`` keeps the same figures (rewritten after each corpus, so a long run
that is stopped keeps what it finished), with machine notes, to compare over time.

``--events N`` events are taken from each corpus (``en-news``, ``en-prose``,
``ja-text``; ``--corpora``), spread evenly over its years and months, and written
as one chronicle file per year into ``--work`` (default: ``perf/`` in the bench
cache, ``$CHRONSEARCH_BENCH_CACHE`` else ``<tmp>/chronsearch-bench``, never the
project). They are indexed through the real pipeline (``chronsearch.build``) in
a child process. That index is kept and reused while the chronicle files and the
code that built it (every ``chronsearch`` module the indexer loaded, less those
that only read an index) are unchanged; ``--rebuild`` forces a new one. The same events go into an SQLite
FTS5 table (``porter unicode61`` for English, ``trigram`` for Japanese), built
afresh in every run, in a child process too.

Queries are taken from the corpus itself, deterministically (``--seed``), about
``--queries`` per category: rare term (document frequency 2-5), common term (the
most frequent words but function words), 2-term AND (two words of one event),
phrase (frequent adjacent words; for Japanese, a frequent 5-character string of
kanji and kana), CJK compound (kanji words of 4+ characters; Japanese only),
filtered (a common term with the year and month of an event holding it), facets
(any of 5 very common words: most of the corpus) and chronological sort.
Japanese words are runs of 3+ kanji or katakana, as FTS5's trigrams need 3.
Each engine answers them in its own child process, so the RSS is its own:

- chronsearch: ``ChronicleIndex.search(...)`` exactly as a user calls it (limit
  10, snippets, and the total and facet counts over all matches it always makes).
- FTS5: the top 10 by ``bm25`` with ``snippet()`` and ``count(*)`` for the total;
  the facets row adds ``GROUP BY year, month``; filtered is ``MATCH ... AND year = ?
  AND month = ?``; chronological is ``ORDER BY year, month, rowid LIMIT 10``.
  FTS5 computes facets only in the facets row, so the other rows favour it.

Each query runs ``--repeat`` times (the median counts) after one warm-up query
per category; the table gives p50 and p95 over the queries. Cold-process
latency runs ``chronsearch search QUERY --no-refresh --index ... --seeds ...`` in a
fresh process against the ``sqlite3`` CLI running the same FTS5 query (top 10
and facet counts) on the same events, on the repo's seeds and on each corpus,
after one run that leaves Python's compiled modules in place (as a user's
installation has them, even where ``PYTHONDONTWRITEBYTECODE`` is set). Peak RSS
comes from ``/proc`` (VmHWM) for the child processes, and from GNU ``time`` for
the CLIs.

Hit counts are compared query by query. English words may differ a little by
design (Porter vs Snowball stems: FTS5 finds "news" for "new"); Japanese strings
that hold kana differ much more (chronsearch also matches other inflections
through Janome: ``知っている`` finds ``知らない``); kanji and katakana words, and
English phrases, mean the same to both but for Janome phrases skipping
particles (``銭形平次`` also finds ``銭形の平次``). The agreement table says how
far totals agree.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import importlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import pstats
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scale import CORPORA, SHARED_SCALE, cache_dir, unpack, write_chronicle  # noqa: E402
from chronsearch.chronicle import Event, find_chronicles, read_chronicle  # noqa: E402

CATEGORIES = ("rare", "common", "and", "phrase", "compound", "filtered", "facets", "chronological")
LABELS = {
    "rare": "rare term",
    "common": "common term",
    "and": "2-term AND",
    "phrase": "phrase of common words",
    "compound": "CJK compound",
    "filtered": "common term, year+month filter",
    "facets": "facets over most of the corpus",
    "chronological": "chronological sort",
}
# Categories where both engines mean the same thing by the query, so totals should agree.
SAME_SEMANTICS = {"en": ("phrase",), "ja": ("rare", "common", "and", "compound", "filtered", "chronological")}
LIMIT = 10
SELECTION_VERSION = 1  # bump when the choice of events changes
# Function words never make a "common term": nobody searches for them, and
# chronsearch drops some of them (its stop words) while FTS5 keeps all.
EN_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each even ever every few for from further had
    has have having he her here hers herself him himself his how however i if in into is it its itself just
    may me might more most much must my myself no nor not now of off on once only or other ought our ours
    ourselves out over own per said same say says shall she should since so some still such than that the
    their theirs them themselves then there these they this those though through thus to too under until up
    upon us very was we were what when where whether which while who whom whose why will with within without
    would yet you your yours yourself yourselves one two""".split()
)
EN_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
KANJI = r"\u4e00-\u9fff\u3005"
KATAKANA = r"\u30a1-\u30fa\u30fc"
JA_WORD = re.compile(rf"[{KANJI}]{{3,}}|[{KATAKANA}]{{3,}}")
KANJI_WORD = re.compile(rf"[{KANJI}]{{3,}}")
CJK_RUN = re.compile(rf"[\u3041-\u309f{KATAKANA}{KANJI}]+")
HAS_KANJI = re.compile(rf"[{KANJI}]")
HAS_HIRAGANA = re.compile(r"[\u3041-\u309f]")
STATS_SAMPLE = 20_000  # events scanned for n-gram and word-pair counts


# --- child processes ------------------------------------------------------------


@dataclass
class Measured:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_measured(cmd: Sequence[str], *, check: bool = True, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``cmd`` to the end; its wall time and output."""
    started = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, stdin=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - started
    result = Measured(seconds, done.returncode, done.stdout.decode(), done.stderr.decode())
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def own_peak_rss_mb() -> float:
    """This process's peak RSS.

    Not ``getrusage``: Linux carries the parent's peak into the ``ru_maxrss`` of a
    forked and exec'd child, so every child of this (large) process would look
    at least as large as it. VmHWM belongs to the process's own address space.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


GNU_TIME = shutil.which("time")  # the program, not the shell keyword


def peak_rss_mb(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> float | None:
    """Peak RSS of ``cmd`` (for programs that cannot report their own), via GNU time.

    time is small, so the child it forks inherits no large peak (see
    :func:`own_peak_rss_mb`). None where there is no GNU time.
    """
    if GNU_TIME is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rss"
        done = subprocess.run([GNU_TIME, "-f", "%M", "-o", str(out), *cmd], capture_output=True, env=env)
        if done.returncode not in (0, 1) or not out.exists():
            return None
        return int(out.read_text().split()[-1]) / 1024


def child(kind: str, *args: str | Path) -> Measured:
    """Run one of this script's child tasks (see :func:`child_main`)."""
    return run_measured([sys.executable, str(Path(__file__).resolve()), "_child", kind, *map(str, args)])


def child_main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "build":
        seeds, index, out = map(Path, args)
        result = build_chronsearch(seeds, index)
    elif kind == "fts5":
        seeds, db, tokenizer, out = Path(args[0]), Path(args[1]), args[2], Path(args[3])
        result = build_fts5(seeds, db, tokenizer)
    elif kind == "queries":
        spec_file, out = Path(args[0]), Path(args[1])
        result = run_queries(json.loads(spec_file.read_text(encoding="utf-8")))
    else:
        raise SystemExit(f"unknown child task {kind}")
    result["max_rss_mb"] = own_peak_rss_mb()
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


# --- building -------------------------------------------------------------------


def build_chronsearch(seeds: Path, index: Path) -> dict[str, Any]:
    """(child) A fresh index of ``seeds``; what it took, and the code that made it."""
    from chronsearch import build
    from chronsearch.schema import index_name

    stats = build(seeds, index)
    return {
        "seconds": stats.took_ms / 1000,
        "events": stats.events_total,
        "errors": list(stats.errors),
        "index_name": index_name(),
        "code": code_hashes(loaded_modules(writing=True)),
        "built_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# Modules that only read an index: a change to them leaves a built index as it was.
READ_ONLY_MODULES = {"cli", "columns", "matching", "searching", "snippets", "suggest", "watch"}


def loaded_modules(*, writing: bool = False) -> list[str]:
    """The chronsearch modules this process has imported; with ``writing``, only
    those that can change what an index holds."""
    names = {
        name
        for name, m in list(sys.modules.items())
        if name.split(".")[0] == "chronsearch"
        and getattr(m, "__file__", None)
        and not (writing and name.rpartition(".")[2] in READ_ONLY_MODULES)
    }
    return sorted(names)


def code_hashes(modules: Iterable[str]) -> dict[str, str]:
    """A hash of each module's source, where this process imports it from: an index
    built by another checkout is reused only if its code is the same as this one's."""
    hashes = {}
    for name in modules:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # a name no module has: a record from an older benchmark
            spec = None
        source = Path(spec.origin) if spec is not None and spec.origin else None
        hashes[name] = hashlib.sha256(source.read_bytes()).hexdigest() if source and source.exists() else "missing"
    return hashes


def fts5_schema(tokenizer: str) -> str:
    return f"CREATE VIRTUAL TABLE events USING fts5(text, year UNINDEXED, month UNINDEXED, tokenize='{tokenizer}')"


def build_fts5(seeds: Path, db: Path, tokenizer: str) -> dict[str, Any]:
    """(child) Seconds to parse the same chronicles and load them into FTS5."""
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute(fts5_schema(tokenizer))
    events = 0
    for path in find_chronicles(seeds):
        rows = [(e.text, e.year, e.month) for e in read_chronicle(path, root=seeds)]
        con.executemany("INSERT INTO events VALUES (?, ?, ?)", rows)
        events += len(rows)
    con.commit()
    con.close()
    return {"seconds": time.perf_counter() - started, "events": events}


def tree_hash(folder: Path) -> str:
    """A hash of the chronicle files' names and contents."""
    digest = hashlib.sha256()
    for path in find_chronicles(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ensure_index(seeds: Path, index: Path, *, rebuild: bool) -> dict[str, Any]:
    """Build the chronsearch index of ``seeds`` unless the one there is still valid.

    Valid means: the same chronicle files, and the same content of every
    chronsearch module the indexer loaded last time (so a change to searching
    or the CLI does not cost a rebuild, but one to parsing or analysis does).
    """
    from chronsearch.schema import index_name

    record_file = index.parent / f"{index.name}.build.json"
    corpus = tree_hash(seeds)
    if not rebuild and record_file.exists() and index.is_dir():
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if (
            record["corpus"] == corpus
            and record["index_name"] == index_name()
            and record["code"] == code_hashes(record["code"])
        ):
            return {**record, "reused": True}
    shutil.rmtree(index, ignore_errors=True)  # the analysis cache too: a cold build
    index.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build.json"
        run = child("build", seeds, index, out)
        record = json.loads(out.read_text(encoding="utf-8"))
    if record["errors"]:
        raise SystemExit(f"indexing {seeds} reported errors: {record['errors'][:3]}")
    record.update(corpus=corpus, wall_seconds=run.seconds)
    record_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return {**record, "reused": False}


def fts5_file(seeds: Path, db: Path, tokenizer: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "fts5.json"
        run = child("fts5", seeds, db, tokenizer, out)
        record = json.loads(out.read_text(encoding="utf-8"))
    return {**record, "wall_seconds": run.seconds}


# --- the corpus -----------------------------------------------------------------


def spread(counts: Sequence[int], total: int) -> list[int]:
    """How many of ``total`` to take from each file: as even as their sizes allow."""
    quotas = [0] * len(counts)
    left = min(total, sum(counts))
    open_files = [i for i, c in enumerate(counts) if c]
    while left and open_files:
        share, extra = divmod(left, len(open_files))
        for rank, i in enumerate(open_files):
            take = min(counts[i] - quotas[i], share + (rank < extra))
            quotas[i] += take
            left -= take
        open_files = [i for i in open_files if quotas[i] < counts[i]]
    return quotas


def prepare_corpus(corpus: str, events: int | None, folder: Path) -> Path:
    """Write ``events`` of ``corpus`` (spread over its years) as one chronicle per year."""
    seeds = folder / "seeds"
    source = SHARED_SCALE / f"{CORPORA[corpus]}.tar.xz"
    key = {"corpus": corpus, "events": events, "version": SELECTION_VERSION, "archive": source.stat().st_size}
    marker = folder / "selection.json"
    if marker.exists() and json.loads(marker.read_text()) == key and seeds.is_dir():
        return seeds  # choosing means parsing the whole corpus: done once
    unpacked = unpack(corpus)
    per_file = [read_chronicle(p, root=unpacked) for p in find_chronicles(unpacked)]
    quotas = spread([len(f) for f in per_file], events if events is not None else sum(map(len, per_file)))
    by_year: dict[int, list[Event]] = {}
    for file_events, quota in zip(per_file, quotas, strict=True):
        # Evenly spaced, not the first ones: every month of the year keeps its share.
        for i in range(quota):
            event = file_events[i * len(file_events) // quota]
            by_year.setdefault(event.year, []).append(event)
    shutil.rmtree(seeds, ignore_errors=True)
    seeds.mkdir(parents=True)
    for year, chosen in sorted(by_year.items()):
        chosen.sort(key=lambda e: (e.month or 0))  # stable: file order within a month
        write_chronicle(seeds / f"{corpus}-{year}.txt", chosen, title=f"{year} Events")
    marker.write_text(json.dumps(key))
    return seeds


def read_events(seeds: Path) -> list[Event]:
    """The events as the indexer sees them: parsed back from the written files."""
    return [e for path in find_chronicles(seeds) for e in read_chronicle(path, root=seeds)]


# --- queries --------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    text: str  # for chronsearch
    fts: str  # the FTS5 MATCH expression
    year: int | None = None
    month: int | None = None
    match: str = "all"
    sort: str = "relevance"


def fts_quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def en_tokens(text: str) -> list[str]:
    return EN_TOKEN.findall(text.lower())


def en_usable(word: str) -> bool:
    # No apostrophes: chronsearch keeps "don't" whole where FTS5 splits it.
    return len(word) >= 3 and word.isascii() and word.isalpha() and word not in EN_STOP


def ja_grams(text: str, n: int) -> set[str]:
    return {run[i : i + n] for run in CJK_RUN.findall(text) for i in range(len(run) - n + 1)}


def sample_of(events: Sequence[Event]) -> Sequence[Event]:
    step = max(1, len(events) // STATS_SAMPLE)
    return events[::step]


def ranked(counts: Counter[str], keep: Any = lambda term: True) -> list[str]:
    """Terms by falling document frequency, then alphabetically (ties must not depend on hashing)."""
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if keep(t)]


def pick(rng: random.Random, items: Sequence[Any], k: int) -> list[Any]:
    return rng.sample(list(items), min(k, len(items)))


def two_from_one_event(
    rng: random.Random, events: Sequence[Event], words_of: Any, allowed: set[str], k: int
) -> list[tuple[str, str]]:
    """``k`` pairs of allowed words that occur together in some event, so every AND has hits."""
    pairs: list[tuple[str, str]] = []
    for _ in range(200 * k):
        if len(pairs) == k:
            break
        event = events[rng.randrange(len(events))]
        found = sorted(set(words_of(event.text)) & allowed)
        if len(found) >= 2:
            pair = tuple(rng.sample(found, 2))
            if pair not in pairs:
                pairs.append(pair)  # type: ignore[arg-type]
    return pairs


def filtered(rng: random.Random, events: Sequence[Event], words_of: Any, common: list[str], k: int) -> list[Query]:
    """A common term, filtered to the year and month of an event that holds it."""
    allowed = set(common)
    queries: list[Query] = []
    for _ in range(200 * k):
        if len(queries) == k:
            break
        event = events[rng.randrange(len(events))]
        found = sorted(set(words_of(event.text)) & allowed)
        if found:
            word = rng.choice(found)
            queries.append(Query(word, fts_quote(word), year=event.year, month=event.month))
    return queries


def make_queries(events: Sequence[Event], lang: str, k: int, seed: int) -> dict[str, list[Query]]:
    """About ``k`` queries per category, chosen from the corpus by document frequency."""
    rng = random.Random(seed)
    if lang == "ja":
        return japanese_queries(events, k, rng)
    return english_queries(events, k, rng)


def english_queries(events: Sequence[Event], k: int, rng: random.Random) -> dict[str, list[Query]]:
    df: Counter[str] = Counter()
    for event in events:
        df.update({w for w in en_tokens(event.text) if en_usable(w)})
    pair_df: Counter[str] = Counter()
    for event in sample_of(events):
        tokens = en_tokens(event.text)
        pair_df.update({f"{a} {b}" for a, b in zip(tokens, tokens[1:]) if en_usable(a) and en_usable(b)})
    words = ranked(df)
    top = words[:100]
    rare = sorted(w for w, c in df.items() if 2 <= c <= 5)
    mid = set(words[k : max(1000, 2 * k)])

    def words_of(text: str) -> list[str]:
        return en_tokens(text)

    return {
        "rare": [Query(w, fts_quote(w)) for w in pick(rng, rare, k)],
        "common": [Query(w, fts_quote(w)) for w in words[:k]],
        "and": [Query(f"{a} {b}", f"{fts_quote(a)} AND {fts_quote(b)}")
                for a, b in two_from_one_event(rng, events, words_of, mid, k)],
        "phrase": [Query(f'"{p}"', fts_quote(p)) for p in ranked(pair_df)[:k]],
        "compound": [],
        "filtered": filtered(rng, events, words_of, top, k),
        "facets": facet_queries(rng, words[:10], k),
        "chronological": [Query(w, fts_quote(w), sort="chronological") for w in pick(rng, top, k)],
    }  # fmt: skip


def japanese_queries(events: Sequence[Event], k: int, rng: random.Random) -> dict[str, list[Query]]:
    # FTS5's trigram tokenizer finds nothing shorter than 3 characters, so every
    # Japanese query term has at least 3. Words are runs of kanji or of katakana:
    # a run ends where the script changes, which is mostly a word boundary.
    word_df: Counter[str] = Counter()
    for event in events:
        word_df.update(set(JA_WORD.findall(event.text)))
    gram3: Counter[str] = Counter()
    gram5: Counter[str] = Counter()
    for event in sample_of(events):
        gram3.update(ja_grams(event.text, 3))
        gram5.update(ja_grams(event.text, 5))
    words = ranked(word_df)
    top = words[:100]
    rare = sorted(w for w, c in word_df.items() if 2 <= c <= 5)
    # Compounds of several words (一生懸命, 自分自身): Janome may split them.
    compounds = ranked(word_df, lambda w: len(w) >= 4 and KANJI_WORD.fullmatch(w) is not None)
    phrases = ranked(gram5, lambda g: HAS_KANJI.search(g) is not None and HAS_HIRAGANA.search(g) is not None)
    # Not too rare, so that AND has work to do; a small corpus has few such words.
    mid = {w for w, c in word_df.items() if c >= max(2, len(events) // 5000)}

    def words_of(text: str) -> list[str]:
        return JA_WORD.findall(text)

    return {
        "rare": [Query(w, fts_quote(w)) for w in pick(rng, rare, k)],
        "common": [Query(w, fts_quote(w)) for w in words[:k]],
        "and": [Query(f"{a} {b}", f"{fts_quote(a)} AND {fts_quote(b)}")
                for a, b in two_from_one_event(rng, events, words_of, mid, k)
                or two_from_one_event(rng, events, words_of, set(word_df), k)],  # a tiny corpus
        "phrase": [Query(f'"{p}"', fts_quote(p)) for p in phrases[:k]],
        "compound": [Query(w, fts_quote(w)) for w in compounds[:k]],
        "filtered": filtered(rng, events, words_of, top, k),
        # The most frequent strings of all, verb endings and particles (ている,
        # という): any of five is in most events.
        "facets": facet_queries(rng, ranked(gram3)[:10], k),
        "chronological": [Query(w, fts_quote(w), sort="chronological") for w in pick(rng, top, k)],
    }  # fmt: skip


def facet_queries(rng: random.Random, top: list[str], k: int) -> list[Query]:
    queries = []
    for _ in range(k):
        words = sorted(rng.sample(top, min(5, len(top))))
        queries.append(Query(" ".join(words), " OR ".join(map(fts_quote, words)), match="any"))
    return queries


# --- timing queries (child) -----------------------------------------------------


def run_queries(spec: dict[str, Any]) -> dict[str, Any]:
    """(child) Time every query of ``spec`` on one engine; totals, times, and a profile if asked."""
    engine = spec["engine"]
    run = chronsearch_runner(spec["path"]) if engine == "chronsearch" else fts5_runner(spec["path"])
    repeat = spec["repeat"]
    results: dict[str, Any] = {}
    for category, queries in spec["queries"].items():
        if not queries:
            continue
        run(Query(**queries[0]))  # warm-up: first reads of the index, Janome's dictionary
        times, totals = [], []
        for raw in queries:
            query = Query(**raw)
            samples = []
            for _ in range(repeat):
                started = time.perf_counter()
                total = run(query)
                samples.append(time.perf_counter() - started)
            times.append(statistics.median(samples) * 1000)
            totals.append(total)
        results[category] = {"ms": times, "totals": totals}
    profile = None
    if engine == "chronsearch" and spec.get("profile") in spec["queries"]:
        profiler = cProfile.Profile()
        profiler.enable()
        for raw in spec["queries"][spec["profile"]]:
            run(Query(**raw))
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(20)
        profile = text.getvalue()
    # Others may edit the code between runs: say which code answered.
    code = hashlib.sha256(json.dumps(code_hashes(loaded_modules()), sort_keys=True).encode()).hexdigest()[:12]
    return {"categories": results, "profile": profile, "code": code}


def chronsearch_runner(path: str) -> Any:
    from chronsearch import ChronicleIndex

    ix = ChronicleIndex.open(path)

    def run(q: Query) -> int:
        res = ix.search(q.text, year=q.year, month=q.month, limit=LIMIT, match=q.match, sort=q.sort)  # type: ignore[arg-type]
        return res.total

    return run


FTS5_TOP = "SELECT rowid, year, month, snippet(events, 0, '[', ']', '…', 16) FROM events WHERE events MATCH ?"


def fts5_runner(path: str) -> Any:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def run(q: Query) -> int:
        where, args = "", [q.fts]
        if q.year is not None:
            where += " AND year = ?"
            args.append(q.year)
        if q.month is not None:
            where += " AND month = ?"
            args.append(q.month)
        order = "ORDER BY year, month, rowid" if q.sort == "chronological" else "ORDER BY rank"
        con.execute(f"{FTS5_TOP}{where} {order} LIMIT {LIMIT}", args).fetchall()
        if q.match == "any":  # the facets row: counts per year and month, and the total from them
            rows = con.execute(
                f"SELECT year, month, count(*) FROM events WHERE events MATCH ?{where} GROUP BY year, month", args
            ).fetchall()
            return sum(n for _, _, n in rows)
        return con.execute(f"SELECT count(*) FROM events WHERE events MATCH ?{where}", args).fetchone()[0]

    return run


def time_queries(engine: str, path: Path, queries: dict[str, list[Query]], args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "engine": engine,
        "path": str(path),
        "repeat": args.repeat,
        "profile": args.profile,
        "queries": {c: [asdict(q) for q in qs] for c, qs in queries.items()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_file, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        child("queries", spec_file, out)
        return json.loads(out.read_text(encoding="utf-8"))


# --- cold processes -------------------------------------------------------------


# A new process as a user's: Python keeps compiled modules. Under
# PYTHONDONTWRITEBYTECODE (some CI and sandbox setups) every process would
# compile chronsearch's modules again, about 60 ms.
USER_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def cold_chronsearch(index: Path, seeds: Path, query: str, repeat: int) -> dict[str, float]:
    """Median wall time of a new ``chronsearch search`` process, and its RSS."""
    cmd = [sys.executable, "-m", "chronsearch", "search", query, "--no-refresh", "--index", str(index),
           "--seeds", str(seeds), "--limit", str(LIMIT)]  # fmt: skip
    run_measured(cmd, check=False, env=USER_ENV)  # compiles what is not compiled yet
    runs = [run_measured(cmd, check=False, env=USER_ENV) for _ in range(repeat)]
    bad = [r for r in runs if r.returncode not in (0, 1)]  # 1: nothing found
    if bad:
        raise SystemExit(f"chronsearch search {query!r} failed:\n{bad[0].stderr[-2000:]}")
    return {"ms": statistics.median(r.seconds for r in runs) * 1000, "max_rss_mb": peak_rss_mb(cmd, USER_ENV)}


def cold_sqlite(db: Path, match: str, repeat: int) -> dict[str, float]:
    """The same for the ``sqlite3`` CLI: the top 10 with snippets, then facet counts."""
    literal = "'" + match.replace("'", "''") + "'"
    sql = (
        f"{FTS5_TOP.replace('?', literal)} ORDER BY rank LIMIT {LIMIT};"
        f" SELECT year, month, count(*) FROM events WHERE events MATCH {literal} GROUP BY year, month;"
    )
    cmd = [SQLITE_CLI, "-readonly", str(db), sql]
    runs = [run_measured(cmd) for _ in range(repeat)]
    return {"ms": statistics.median(r.seconds for r in runs) * 1000, "max_rss_mb": peak_rss_mb(cmd)}


SQLITE_CLI = shutil.which("sqlite3") or "sqlite3"


def cold_pair(index: Path, seeds: Path, db: Path, query: str, repeat: int) -> dict[str, Any]:
    return {
        "query": query,
        "chronsearch": cold_chronsearch(index, seeds, query, repeat),
        "fts5": cold_sqlite(db, fts_quote(query), repeat),
    }


def seeds_cold(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Cold-process latency on the repo's seeds: an ASCII and a Japanese query."""
    seeds, folder = ROOT / "seeds", work / "seeds"
    index = folder / "index"
    ensure_index(seeds, index, rebuild=args.rebuild)
    rows = []
    for query, tokenizer in (("zone", "porter unicode61"), ("ハイテク産業区", "trigram")):
        db = folder / f"fts5-{tokenizer.split()[0]}.sqlite"
        fts5_file(seeds, db, tokenizer)
        rows.append(cold_pair(index, seeds, db, query, args.cold_repeat))
    return rows


# --- one corpus -----------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: with 30 values, p95 is the 29th."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def agreement(ours: Sequence[int], theirs: Sequence[int]) -> dict[str, Any]:
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    ratios = [a / b for a, b in zip(ours, theirs, strict=True) if b]
    return {
        "agree": same / len(ours) if ours else None,
        "median_total_ratio": statistics.median(ratios) if ratios else None,
        "chronsearch_more": sum(a > b for a, b in zip(ours, theirs, strict=True)),
        "chronsearch_fewer": sum(a < b for a, b in zip(ours, theirs, strict=True)),
    }


def bench_corpus(corpus: str, args: argparse.Namespace) -> dict[str, Any]:
    lang = "ja" if corpus.startswith("ja") else "en"
    size = "all" if args.events is None else str(args.events)
    folder = args.work / f"{corpus}-{size}"
    note(f"{corpus}: choosing {size} events")
    seeds = prepare_corpus(corpus, args.events, folder)
    events = read_events(seeds)
    text_mb = sum(len(e.text.encode("utf-8")) for e in events) / 1e6
    note(f"{corpus}: {len(events):,} events, {text_mb:.1f} MB of text; indexing (reused if unchanged)")
    build = ensure_index(seeds, folder / "index", rebuild=args.rebuild)
    tokenizer = "trigram" if lang == "ja" else "porter unicode61"
    note(f"{corpus}: indexed in {build['seconds']:.1f} s{' (reused)' if build['reused'] else ''}; FTS5 build")
    db = folder / "fts5.sqlite"
    fts = fts5_file(seeds, db, tokenizer)
    queries = make_queries(events, lang, args.queries, args.seed)
    note(f"{corpus}: {sum(map(len, queries.values()))} queries; timing chronsearch")
    ours = time_queries("chronsearch", folder / "index", queries, args)
    note(f"{corpus}: timing FTS5")
    theirs = time_queries("fts5", db, queries, args)
    common = queries["common"][0].text
    note(f"{corpus}: cold processes")
    cold = cold_pair(folder / "index", seeds, db, common, args.cold_repeat)
    categories = {}
    for category, qs in queries.items():
        if not qs:
            continue
        a, b = ours["categories"][category], theirs["categories"][category]
        categories[category] = {
            "queries": [asdict(q) for q in qs],
            "chronsearch": {"p50_ms": percentile(a["ms"], 50), "p95_ms": percentile(a["ms"], 95), **a},
            "fts5": {"p50_ms": percentile(b["ms"], 50), "p95_ms": percentile(b["ms"], 95), **b},
            "totals": agreement(a["totals"], b["totals"]),
            "same_semantics": category in SAME_SEMANTICS[lang],
        }
    return {
        "corpus": corpus,
        "lang": lang,
        "events": len(events),
        "files": len(find_chronicles(seeds)),
        "text_mb": text_mb,
        "fts5_tokenizer": tokenizer,
        "work": str(folder),
        "build": {
            "chronsearch": {**build, "index_mb": folder_bytes(folder / "index") / 1e6,
                            "analysis_cache_mb": sum(p.stat().st_size for p in (folder / "index").glob("janome-cache*")) / 1e6},
            "fts5": {**fts, "index_mb": db.stat().st_size / 1e6},
        },  # fmt: skip
        "categories": categories,
        "search_rss_mb": {"chronsearch": ours["max_rss_mb"], "fts5": theirs["max_rss_mb"]},
        "search_code": ours["code"],
        "cold": cold,
        "profile": ours["profile"],
    }


# --- report ---------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "–"


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def table(result: dict[str, Any]) -> str:
    ours, theirs = result["build"]["chronsearch"], result["build"]["fts5"]
    n, mb = result["events"], result["text_mb"]
    reused = f", built {ours['built_at']}, reused" if ours["reused"] else ""
    lines = [
        f"### {result['corpus']}: {n:,} events, {result['files']} files, {mb:.1f} MB of text"
        f" (chronsearch code {result['search_code']})",
        "",
        f"| measure | chronsearch | SQLite FTS5 ({result['fts5_tokenizer']}) | chronsearch/FTS5 |",
        "|---|---|---|---|",
        f"| index build | {ours['seconds']:.1f} s, {n / ours['seconds']:,.0f} events/s, {mb / ours['seconds']:.2f} MB/s{reused}"
        f" | {theirs['seconds']:.2f} s, {n / theirs['seconds']:,.0f} events/s, {mb / theirs['seconds']:.2f} MB/s"
        f" | {ratio(ours['seconds'], theirs['seconds'])} |",
        f"| peak RSS, indexing process | {ours['max_rss_mb']:,.0f} MB | {theirs['max_rss_mb']:,.0f} MB"
        f" | {ratio(ours['max_rss_mb'], theirs['max_rss_mb'])} |",
        f"| index size on disk | {ours['index_mb']:,.1f} MB (analysis cache {ours['analysis_cache_mb']:,.1f} MB)"
        f" | {theirs['index_mb']:,.1f} MB | {ratio(ours['index_mb'], theirs['index_mb'])} |",
    ]
    for category, row in result["categories"].items():
        a, b = row["chronsearch"], row["fts5"]
        lines.append(
            f"| {LABELS[category]} ({len(row['queries'])} q), p50 / p95 | {ms(a['p50_ms'])} / {ms(a['p95_ms'])}"
            f" | {ms(b['p50_ms'])} / {ms(b['p95_ms'])}"
            f" | {ratio(a['p50_ms'], b['p50_ms'])} / {ratio(a['p95_ms'], b['p95_ms'])} |"
        )
    rss = result["search_rss_mb"]
    lines.append(
        f"| search process RSS after the queries | {rss['chronsearch']:,.0f} MB | {rss['fts5']:,.0f} MB"
        f" | {ratio(rss['chronsearch'], rss['fts5'])} |"
    )
    lines.append(cold_row(f"cold process, this index, `{result['cold']['query']}`", result["cold"]))
    return "\n".join(lines)


def cold_row(label: str, cold: dict[str, Any]) -> str:
    a, b = cold["chronsearch"], cold["fts5"]
    return (
        f"| {label} | {ms(a['ms'])}, {mb(a['max_rss_mb'])} | {ms(b['ms'])} (sqlite3 CLI), {mb(b['max_rss_mb'])}"
        f" | {ratio(a['ms'], b['ms'])} |"
    )


def mb(value: float | None) -> str:
    return "RSS ?" if value is None else f"{value:,.0f} MB"


def agreement_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| corpus | category | totals agree | chronsearch more / fewer | median total ratio | same semantics |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for category, row in result["categories"].items():
            t = row["totals"]
            median_ratio = f"{t['median_total_ratio']:.2f}" if t["median_total_ratio"] is not None else "–"
            lines.append(
                f"| {result['corpus']} | {LABELS[category]} | {t['agree']:.0%} | {t['chronsearch_more']} / "
                f"{t['chronsearch_fewer']} | {median_ratio} | {'yes' if row['same_semantics'] else 'no'} |"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlite_cli": subprocess.run([SQLITE_CLI, "--version"], capture_output=True, text=True).stdout.split(" ")[0],
        "whoosh": version("whoosh-reloaded"),
        "janome": version("janome"),
        "chronsearch": version("chronsearch"),
        "commit": git("rev-parse", "--short", "HEAD"),
        # PYTHONPATH may point at another copy of the code (a snapshot of a commit).
        "chronsearch_src": str(Path(importlib.import_module("chronsearch").__file__ or "").parent),
        "src_changed": bool(git("status", "--porcelain", "src")),  # other edits in the tree
        "load_average": os.getloadavg(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def save(report: dict[str, Any], path: Path | None) -> None:
    """Write the JSON so far: a long run that is stopped keeps its finished corpora."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


def note(message: str) -> None:
    print(f"[perf] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="10000", help="events per corpus: a number or 'all' (default 10000)")
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated (default: all three)")
    parser.add_argument("--work", type=Path, default=cache_dir() / "perf", help="scratch folder, outside the project")
    parser.add_argument("--rebuild", action="store_true", help="index anew even if the index is up to date")
    parser.add_argument("--queries", type=int, default=30, help="queries per category (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query; the median counts")
    parser.add_argument("--cold-repeat", type=int, default=5, help="runs of each cold process")
    parser.add_argument("--seed", type=int, default=5, help="seed for choosing the queries")
    parser.add_argument("--profile", choices=CATEGORIES, help="cProfile chronsearch on this category")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.events = None if args.events == "all" else int(args.events)
    args.corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    unknown = [c for c in args.corpora if c not in CORPORA]
    if unknown:
        parser.error(f"unknown corpora {unknown}; choose from {', '.join(CORPORA)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        child_main(argv[1:])
        return {}
    args = parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    notes = machine()
    print(
        f"machine: {notes['cpus']} CPUs, {notes['platform']}, Python {notes['python']}, SQLite {notes['sqlite']},"
        f" whoosh-reloaded {notes['whoosh']}, janome {notes['janome']}, chronsearch {notes['commit']}"
        f"{' + uncommitted src changes' if notes['src_changed'] else ''} (code in {notes['chronsearch_src']});"
        f" load average {notes['load_average'][0]:.2f} at the start\n",
        flush=True,
    )
    note("seeds: cold processes")
    report: dict[str, Any] = {"machine": notes, "args": {k: str(v) for k, v in vars(args).items()},
                              "seeds_cold": seeds_cold(args.work, args), "corpora": [], "complete": False}  # fmt: skip
    for corpus in args.corpora:
        result = bench_corpus(corpus, args)
        report["corpora"].append(result)
        print(table(result) + "\n", flush=True)  # a long run shows each corpus when done
        save(report, args.json)
    notes["load_average_end"] = os.getloadavg()
    report["complete"] = True
    save(report, args.json)

    print("### cold processes on the repo's seeds\n")
    print("| query | chronsearch search --no-refresh | sqlite3 CLI, FTS5 | chronsearch/FTS5 |")
    print("|---|---|---|---|")
    for row in report["seeds_cold"]:
        print(cold_row(f"`{row['query']}`", row))
    print("\n### hit counts: chronsearch total vs FTS5 count(*), query by query\n")
    print(agreement_table(report["corpora"]))
    for result in report["corpora"]:
        if result["profile"]:
            print(f"\n### cProfile of chronsearch, {result['corpus']}, {LABELS[args.profile]}\n")
            print(result["profile"])
    print(f"load average {notes['load_average_end'][0]:.2f} at the end")
    return report


if __name__ == "__main__":
    main()
