"""Retrieval evaluation of chronsearch, next to an SQLite FTS5 baseline.

Run from the project root (the eval data sits next to the project, in
``../shared/eval``; see its README for the formats and the licences)::

    python benchmarks/eval.py                       # every set and split, one table
    python benchmarks/eval.py --sets jsquad,cranfield/odd --max-queries 500
    python benchmarks/eval.py --work .eval-work --jobs 2 --json results.json

Every corpus is indexed once per run as chronsearch events, through the real
pipeline (``chronsearch.indexing.index_events``: the real analyzers and schema),
and searched with the library API, ``ChronicleIndex.search(query, match="any",
limit=100)``. The same documents and queries go into an in-memory SQLite FTS5
table (``trigram`` for Japanese, ``porter unicode61`` for English) ranked by
``bm25()``. Metrics use binary relevance: MRR@10, nDCG@10 and Recall@100.

Tune only on the splits marked ``tune`` (JaQuAD train, JSQuAD valid, the
odd-numbered Cranfield queries); report every split.

How a question becomes a query (``--query-mode``):

* Whoosh syntax is neutralised (:func:`neutralize`): the characters
  ``: " ( ) [ ] { } * ? ~ ^ < > = \\`` and quotes that are not inside a word become
  spaces, and the operators ``AND OR NOT ANDNOT ANDMAYBE TO`` are lowercased, so a
  plain question means its words.
* ``raw`` (the default) does nothing more: with ``match="any"`` chronsearch itself
  splits a run of Japanese into its words (and leaves out question words).
* ``words`` also splits each run of CJK text into the words that chronsearch's
  own Japanese analyzer finds, separated by spaces, as a user would type them;
  the words the analyzer drops (particles, auxiliaries, its stop words) are left
  out. Kept for comparison: the library did not split questions before.

Highlighted snippets do not change the ranking, and with ``limit=100`` they cost
far more than the search itself, so the harness searches with ``snippets=False``
(``--with-snippets`` keeps them, to time the complete call).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import json
import math
import multiprocessing
import os
import re
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"
EVAL_ENV = "CHRONSEARCH_EVAL"

LIMIT = 100  # hits asked for per query: enough for Recall@100
YEAR = 2000  # every document becomes an event of this year, without a month

# Bump when the way documents become events changes, so cached indexes are rebuilt.
DOC_FORMAT_VERSION = 1

# ---------------------------------------------------------------------------
# Metrics (binary relevance)
# ---------------------------------------------------------------------------


def _unique(ranked: Iterable[str]) -> list[str]:
    """``ranked`` without repeats, keeping each id's first (best) rank."""
    return list(dict.fromkeys(ranked))


def mrr_at(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant id among the first ``k``, else 0."""
    relevant = set(relevant)
    for rank, doc in enumerate(_unique(ranked)[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Iterable[str], k: int = 10) -> float:
    """nDCG@k with binary gains and a log2(rank + 1) discount.

    The ideal DCG puts all the relevant ids first: ``min(k, len(relevant))`` of them.
    """
    relevant = set(relevant)
    if not relevant:
        return 0.0
    dcg = sum(
        1.0 / math.log2(rank + 1)
        for rank, doc in enumerate(_unique(ranked)[:k], start=1)
        if doc in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def recall_at(ranked: Sequence[str], relevant: Iterable[str], k: int = 100) -> float:
    """The share of the relevant ids found among the first ``k``."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return len(relevant.intersection(_unique(ranked)[:k])) / len(relevant)


METRICS: dict[str, Callable[[Sequence[str], Iterable[str]], float]] = {
    "mrr@10": lambda ranked, rel: mrr_at(ranked, rel, 10),
    "ndcg@10": lambda ranked, rel: ndcg_at(ranked, rel, 10),
    "recall@100": lambda ranked, rel: recall_at(ranked, rel, 100),
}


def evaluate(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Iterable[str]]) -> dict[str, float]:
    """The mean of each metric over the queries of ``qrels`` that have a relevant id.

    A query missing from ``run`` counts as one with no hits.
    """
    judged = [qid for qid, rel in qrels.items() if set(rel)]
    if not judged:
        return {name: 0.0 for name in METRICS}
    return {
        name: sum(metric(run.get(qid, ()), qrels[qid]) for qid in judged) / len(judged)
        for name, metric in METRICS.items()
    }


# ---------------------------------------------------------------------------
# The eval sets
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    name: str
    queries: str  # file names in the set's folder
    qrels: str
    parity: int | None = None  # keep only the queries whose numeric id has this parity
    tune: bool = False  # tuning on this split is allowed


@dataclass(frozen=True)
class EvalSet:
    name: str
    folder: str
    lang: str  # "ja" or "en": the events' language, and the FTS5 tokenizer
    splits: tuple[Split, ...]
    # Cranfield's text (.W) starts with the title again: index the text alone.
    title_in_text: bool = False
    # Cranfield's qrels.tsv: every listed pair is relevant, whatever its grade.
    all_pairs_relevant: bool = False


SETS: dict[str, EvalSet] = {
    s.name: s
    for s in (
        EvalSet(
            "jaquad",
            "ja-jaquad",
            "ja",
            (
                Split("train", "queries-train.jsonl", "qrels-train.tsv", tune=True),
                Split("dev", "queries-dev.jsonl", "qrels-dev.tsv"),
            ),
        ),
        EvalSet(
            "jsquad",
            "ja-jsquad",
            "ja",
            (
                Split("valid", "queries-valid.jsonl", "qrels-valid.tsv", tune=True),
                Split("test", "queries-test.jsonl", "qrels-test.tsv"),
            ),
        ),
        EvalSet(
            "cranfield",
            "en-cranfield",
            "en",
            (
                Split("odd", "queries.jsonl", "qrels.tsv", parity=1, tune=True),
                Split("even", "queries.jsonl", "qrels.tsv", parity=0),
                Split("all", "queries.jsonl", "qrels.tsv"),
            ),
            title_in_text=True,
            all_pairs_relevant=True,
        ),
    )
}


def eval_dir(option: str | Path | None = None) -> Path:
    """The eval data folder: ``option``, else ``$CHRONSEARCH_EVAL``, else ``../shared/eval``."""
    if option:
        return Path(option)
    if os.environ.get(EVAL_ENV):
        return Path(os.environ[EVAL_ENV])
    return DEFAULT_EVAL_DIR


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read_qrels(path: Path, *, all_pairs_relevant: bool = False) -> dict[str, set[str]]:
    """``qid -> relevant doc ids`` from a ``qid<TAB>docid<TAB>rel`` file (no header).

    A pair is relevant if its grade is > 0, or always with ``all_pairs_relevant``.
    A query whose pairs are all non-relevant maps to an empty set.
    """
    qrels: dict[str, set[str]] = {}
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path.name}:{number}: expected qid<TAB>docid<TAB>rel")
            qid, docid, rel = parts
            docs = qrels.setdefault(qid, set())
            if all_pairs_relevant or float(rel) > 0:
                docs.add(docid)
    return qrels


def document_text(title: str, text: str, *, title_in_text: bool = False) -> str:
    """An event's text: the title, a line break, the body (once if the body repeats it)."""
    title, text = title.strip(), text.strip()
    if (title_in_text and text) or not title:
        return text
    if not text:
        return title
    return f"{title}\n{text}"


def corpus_events(eval_set: EvalSet, folder: Path) -> list[Any]:
    """The set's documents as chronsearch events (id = doc id, one fixed year)."""
    from chronsearch import Event

    return [
        Event(
            id=str(doc["id"]),
            year=YEAR,
            month=None,
            lang=eval_set.lang,
            text=document_text(doc.get("title", ""), doc.get("text", ""), title_in_text=eval_set.title_in_text),
            source=eval_set.name,
            line=number,
        )
        for number, doc in enumerate(read_jsonl(folder / "corpus.jsonl"), start=1)
    ]


def subsample(qids: Sequence[str], n: int | None) -> list[str]:
    """At most ``n`` of ``qids``, the same ones on every run, in their original order."""
    if n is None or n >= len(qids):
        return list(qids)
    chosen = set(sorted(qids, key=lambda q: hashlib.sha1(q.encode()).hexdigest())[:n])
    return [q for q in qids if q in chosen]


# ---------------------------------------------------------------------------
# Questions -> chronsearch queries
# ---------------------------------------------------------------------------

# Characters with a meaning in chronsearch's (Whoosh's) query syntax: fields (:),
# phrases ("), groups, ranges, wildcards (* ?), fuzziness/slop (~), boosts (^),
# comparisons (< > =, from year:>=2015), backslashes. A quote is syntax only at a
# word's edge ('single term'); inside a word (oseen's) it is part of the word.
_SYNTAX_CHARS = re.compile(r"""[:"()\[\]{}*?~^<>=\\]|(?<!\w)'|'(?!\w)""")


@functools.cache
def _operators() -> re.Pattern[str]:
    from chronsearch.suggest import OPERATORS

    return re.compile(rf"(?<!\S)({'|'.join(sorted(OPERATORS))})(?!\S)")


def neutralize(text: str) -> str:
    """``text`` with Whoosh syntax made plain: syntax characters become spaces and
    operators are lowercased (and, or, not and to are then English stop words)."""
    text = _SYNTAX_CHARS.sub(" ", text)
    text = " ".join(text.split())
    return _operators().sub(lambda m: m[0].lower(), text)


def split_cjk_words(text: str) -> str:
    """``text`` with its CJK runs cut into the words chronsearch's Japanese analyzer keeps.

    The analyzer gives each word's span in the original text; CJK characters outside
    every span (particles, auxiliaries, stop words) are dropped, other characters
    (Latin words, digits, punctuation) stay where they are.
    """
    from chronsearch.analysis import JAPANESE, has_cjk

    if not has_cjk(text):
        return text
    from chronsearch.chronicle import CJK_CHARS

    cjk = re.compile(CJK_CHARS)
    pieces: list[str] = []
    pos = 0
    for token in JAPANESE(text, chars=True):
        start, end = max(token.startchar, pos), token.endchar
        if end <= start:
            continue
        pieces += [cjk.sub(" ", text[pos:start]), " ", text[start:end], " "]
        pos = end
    pieces.append(cjk.sub(" ", text[pos:]))
    return " ".join("".join(pieces).split())


QUERY_MODES = ("raw", "words")


def prepare_query(text: str, mode: str = "raw") -> str:
    """The query string the harness passes to ``ChronicleIndex.search`` for a question."""
    if mode not in QUERY_MODES:
        raise ValueError(f"query mode must be one of {QUERY_MODES}, not {mode!r}")
    if mode == "words":
        text = split_cjk_words(text)
    return neutralize(text)


# ---------------------------------------------------------------------------
# chronsearch
# ---------------------------------------------------------------------------


def _source_fingerprint() -> str:
    """A hash of the chronsearch code and versions that decide an index's contents."""
    import chronsearch.analysis
    import chronsearch.chronicle
    import chronsearch.indexing
    import chronsearch.schema

    h = hashlib.sha256()
    # The analyzers and the schema, how an event becomes a document, and the CJK
    # character class the analyzers use; not the rest of indexing.py (locking,
    # manifests), which does not change what an index holds.
    for module in (chronsearch.analysis, chronsearch.schema):
        h.update(inspect.getsource(module).encode())
    to_document = getattr(chronsearch.indexing, "event_document", chronsearch.indexing)
    h.update(inspect.getsource(to_document).encode())
    h.update(chronsearch.chronicle.CJK_CHARS.encode())
    for dist in ("whoosh-reloaded", "janome"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            h.update(f"{dist}={importlib.metadata.version(dist)}".encode())
    return h.hexdigest()


def index_key(eval_set: EvalSet, folder: Path) -> str:
    """The name of the cached index folder of ``eval_set`` in ``--work``.

    It changes with the corpus, the document conversion, chronsearch's index name
    and its analysis/indexing code, so a stale index is never reused.
    """
    from chronsearch.schema import index_name

    h = hashlib.sha256()
    h.update(f"doc-format-{DOC_FORMAT_VERSION}".encode())
    h.update(_source_fingerprint().encode())
    with (folder / "corpus.jsonl").open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{eval_set.name}-{index_name()}-{h.hexdigest()[:12]}"


def build_index(events: Sequence[Any], index_dir: Path, *, reuse: bool = False) -> tuple[float, bool]:
    """Index ``events`` into ``index_dir`` (unless ``reuse`` and it already holds them).

    Returns (seconds, reused).
    """
    from chronsearch import ChronicleIndex, ChronsearchError
    from chronsearch.indexing import index_events

    if reuse and index_dir.is_dir():
        with contextlib.suppress(ChronsearchError):
            with ChronicleIndex.open(index_dir) as ix:
                if ix.stats().events == len(events):
                    return 0.0, True
    started = time.perf_counter()
    index_events(events, index_dir)
    return time.perf_counter() - started, False


@dataclass
class QueryResult:
    qid: str
    ranked: list[str]
    error: str | None = None  # "empty", "syntax: …" or "<ExceptionType>: …"
    prepare_s: float = 0.0
    search_s: float = 0.0


_worker: dict[str, Any] = {}


def _worker_start(index_dir: str, mode: str, snippets: bool) -> None:
    from chronsearch import ChronicleIndex

    _worker["ix"] = ChronicleIndex.open(index_dir)
    _worker["mode"] = mode
    _worker["snippets"] = snippets


def _worker_batch(batch: list[tuple[str, str]]) -> list[QueryResult]:
    ix, mode, snippets = _worker["ix"], _worker["mode"], _worker["snippets"]
    return [search_one(ix, qid, text, mode, snippets=snippets) for qid, text in batch]


def search_one(
    ix: Any, qid: str, question: str, mode: str = "raw", limit: int = LIMIT, *, snippets: bool = False
) -> QueryResult:
    """Run one question through ``ix.search(..., match="any")``; errors give no hits."""
    from chronsearch import QuerySyntaxError

    started = time.perf_counter()
    query = prepare_query(question, mode)
    prepared = time.perf_counter()
    if not query.strip():
        # A blank query means "every event" to chronsearch: not what was asked.
        return QueryResult(qid, [], "empty", prepared - started)
    try:
        results = ix.search(query, match="any", limit=limit, snippets=snippets)
    except QuerySyntaxError as exc:
        return QueryResult(qid, [], f"syntax: {exc}", prepared - started, time.perf_counter() - prepared)
    except Exception as exc:  # noqa: BLE001 - one bad query must not end a long run
        error = f"{type(exc).__name__}: {exc}"
        return QueryResult(qid, [], error, prepared - started, time.perf_counter() - prepared)
    ranked = [hit.id for hit in results.hits]
    return QueryResult(qid, ranked, None, prepared - started, time.perf_counter() - prepared)


def run_chronsearch(
    index_dir: Path,
    questions: Sequence[tuple[str, str]],
    *,
    mode: str = "raw",
    jobs: int = 1,
    snippets: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[QueryResult]:
    """Search ``(qid, question)`` pairs in the index at ``index_dir``, in order."""
    from chronsearch import ChronicleIndex

    results: list[QueryResult] = []
    batch = 25
    batches = [list(questions[i : i + batch]) for i in range(0, len(questions), batch)]
    if jobs <= 1 or len(questions) < 2 * batch:
        with ChronicleIndex.open(index_dir) as ix:
            for chunk in batches:
                results += [search_one(ix, qid, text, mode, snippets=snippets) for qid, text in chunk]
                if progress:
                    progress(len(results))
        return results
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ctx.Pool(jobs, _worker_start, (str(index_dir), mode, snippets)) as pool:
        for chunk_results in pool.imap(_worker_batch, batches):
            results += chunk_results
            if progress:
                progress(len(results))
    return results


# ---------------------------------------------------------------------------
# SQLite FTS5 baseline
# ---------------------------------------------------------------------------

FTS5_TOKENIZERS = {"ja": "trigram", "en": "porter unicode61"}
_FTS5_WORD = re.compile(r"[^\W_]+")


def fts5_support() -> str | None:
    """Why the FTS5 baseline cannot run here, or None if it can."""
    try:
        con = sqlite3.connect(":memory:")
        try:
            for n, tokenizer in enumerate(FTS5_TOKENIZERS.values()):
                con.execute(f"CREATE VIRTUAL TABLE t{n} USING fts5(body, tokenize='{tokenizer}')")
        finally:
            con.close()
    except sqlite3.Error as exc:
        return (
            f"SQLite {sqlite3.sqlite_version} lacks FTS5 or its trigram tokenizer"
            f" (needs FTS5 and SQLite >= 3.34): {exc}"
        )
    return None


def _fts5_normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def fts5_query(question: str, lang: str) -> str:
    """The FTS5 MATCH expression for a question: its tokens, each quoted, OR-ed.

    Japanese (trigram): every trigram of each run of word characters (runs shorter
    than three characters cannot match a trigram index and are left out).
    English: the words; FTS5's porter tokenizer stems them.
    """
    runs = _FTS5_WORD.findall(_fts5_normalize(question))
    if lang == "ja":
        terms = [run[i : i + 3] for run in runs for i in range(len(run) - 2)]
    else:
        terms = runs
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms))


class Fts5Index:
    """An in-memory FTS5 table of ``(docid, body)``, ranked by ``bm25()``."""

    def __init__(self, docs: Iterable[tuple[str, str]], lang: str) -> None:
        self.lang = lang
        self.con = sqlite3.connect(":memory:")
        self.con.execute(
            f"CREATE VIRTUAL TABLE docs USING fts5(docid UNINDEXED, body, tokenize='{FTS5_TOKENIZERS[lang]}')"
        )
        self.con.executemany(
            "INSERT INTO docs (docid, body) VALUES (?, ?)",
            ((docid, _fts5_normalize(body)) for docid, body in docs),
        )
        self.con.commit()

    def search(self, qid: str, question: str, limit: int = LIMIT) -> QueryResult:
        started = time.perf_counter()
        expr = fts5_query(question, self.lang)
        prepared = time.perf_counter()
        if not expr:
            return QueryResult(qid, [], "empty", prepared - started)
        try:
            rows = self.con.execute(
                "SELECT docid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?", (expr, limit)
            ).fetchall()
        except sqlite3.Error as exc:
            return QueryResult(qid, [], f"sqlite: {exc}", prepared - started, time.perf_counter() - prepared)
        return QueryResult(qid, [r[0] for r in rows], None, prepared - started, time.perf_counter() - prepared)

    def close(self) -> None:
        self.con.close()


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@dataclass
class EngineScore:
    metrics: dict[str, float]
    errors: dict[str, int]  # kind ("empty", "syntax", …) -> count
    error_examples: list[dict[str, str]]
    ms_per_query: float  # mean time of one search call (query preparation apart)
    prepare_ms_per_query: float

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: round(v, 6) for k, v in self.metrics.items()},
            "errors": self.errors,
            "error_examples": self.error_examples,
            "ms_per_query": round(self.ms_per_query, 3),
            "prepare_ms_per_query": round(self.prepare_ms_per_query, 3),
        }


@dataclass
class SplitResult:
    set: str
    split: str
    tune: bool
    queries: int  # evaluated
    available: int  # queries of the split that have a relevant doc
    no_qrels: int  # queries of the split left out: no relevant doc in the qrels
    engines: dict[str, EngineScore] = field(default_factory=dict)
    per_query: dict[str, dict[str, int | None]] | None = None  # qid -> engine -> rank of 1st relevant

    def to_dict(self) -> dict[str, Any]:
        out = {
            "set": self.set,
            "split": self.split,
            "tune": self.tune,
            "queries": self.queries,
            "available": self.available,
            "no_qrels": self.no_qrels,
            **{name: score.to_dict() for name, score in self.engines.items()},
        }
        if self.per_query is not None:
            out["per_query"] = self.per_query
        return out


def score_engine(results: Sequence[QueryResult], qrels: Mapping[str, set[str]]) -> EngineScore:
    run = {r.qid: r.ranked for r in results}
    errors: dict[str, int] = {}
    examples: list[dict[str, str]] = []
    for r in results:
        if r.error:
            kind = r.error.split(":", 1)[0]
            errors[kind] = errors.get(kind, 0) + 1
            if len(examples) < 5:
                examples.append({"qid": r.qid, "error": r.error})
    n = max(len(results), 1)
    return EngineScore(
        metrics=evaluate(run, {r.qid: qrels[r.qid] for r in results}),
        errors=errors,
        error_examples=examples,
        ms_per_query=1000 * sum(r.search_s for r in results) / n,
        prepare_ms_per_query=1000 * sum(r.prepare_s for r in results) / n,
    )


def _first_relevant_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    return next((i for i, doc in enumerate(_unique(ranked), start=1) if doc in relevant), None)


def parse_selection(values: Sequence[str] | None) -> dict[str, set[str] | None]:
    """``["jaquad", "cranfield/odd,cranfield/all"]`` -> ``{set: splits or None for all}``."""
    items = [item.strip() for value in values or [",".join(SETS)] for item in value.split(",") if item.strip()]
    selection: dict[str, set[str] | None] = {}
    for item in items:
        name, _, split = item.partition("/")
        if name not in SETS:
            raise SystemExit(f"eval: unknown set {name!r}; choose from {', '.join(SETS)}")
        if split and split not in {s.name for s in SETS[name].splits}:
            known = ", ".join(s.name for s in SETS[name].splits)
            raise SystemExit(f"eval: {name} has no split {split!r}; it has {known}")
        if split:
            if name not in selection or selection[name] is not None:
                selection.setdefault(name, set()).add(split)  # type: ignore[union-attr]
        else:
            selection[name] = None
    return selection


def parse_max_queries(values: Sequence[str] | None) -> Callable[[str, str], int | None]:
    """``["500", "jaquad/train=3000"]`` -> the limit of a (set, split); None is all."""
    default: int | None = None
    specific: dict[str, int] = {}
    for value in values or []:
        for item in value.split(","):
            key, sep, number = item.strip().rpartition("=")
            try:
                n = int(number)
            except ValueError:
                raise SystemExit(f"eval: --max-queries wants N or SET[/SPLIT]=N, not {item!r}") from None
            if n < 1:
                raise SystemExit("eval: --max-queries must be at least 1")
            if sep:
                specific[key.strip()] = n
            else:
                default = n

    def limit(set_name: str, split: str) -> int | None:
        return specific.get(f"{set_name}/{split}", specific.get(set_name, default))

    return limit


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.started = self.last = time.perf_counter()

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < 30 and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / rate if rate else 0
        _log(f"  {self.label}: {done}/{self.total} queries, {rate:.1f}/s, about {eta / 60:.1f} min left")


def evaluate_set(
    eval_set: EvalSet,
    folder: Path,
    splits: Sequence[Split],
    *,
    work: Path,
    reuse: bool,
    fts5: bool,
    mode: str,
    jobs: int,
    snippets: bool,
    max_queries: Callable[[str, str], int | None],
    per_query: bool = False,
) -> tuple[list[SplitResult], dict[str, Any]]:
    """Index one corpus (chronsearch and FTS5) and evaluate the given splits on it."""
    events = corpus_events(eval_set, folder)
    index_dir = work / index_key(eval_set, folder)
    _log(f"{eval_set.name}: {len(events)} documents; chronsearch index in {index_dir.name}")
    cs_seconds, reused = build_index(events, index_dir, reuse=reuse)
    _log(f"{eval_set.name}: chronsearch index {'reused' if reused else f'built in {cs_seconds:.1f} s'}")
    fts: Fts5Index | None = None
    fts_seconds = 0.0
    if fts5:
        started = time.perf_counter()
        fts = Fts5Index(((e.id, e.text) for e in events), eval_set.lang)
        fts_seconds = time.perf_counter() - started
    doc_ids = {e.id for e in events}
    timing: dict[str, Any] = {
        "documents": len(events),
        "chronsearch_index_s": None if reused else round(cs_seconds, 2),
        "chronsearch_index_reused": reused,
        "fts5_index_s": round(fts_seconds, 2) if fts5 else None,
        "splits": {},
    }
    if eval_set.title_in_text:
        docs = list(read_jsonl(folder / "corpus.jsonl"))
        timing["title_not_repeated"] = sum(
            1 for d in docs if d.get("text") and not d["text"].startswith(d.get("title", ""))
        )

    # Splits that share a queries file (Cranfield odd/even/all) share the searches.
    cache: dict[str, dict[str, QueryResult]] = {"chronsearch": {}, "fts5": {}}
    results: list[SplitResult] = []
    try:
        for split in splits:
            started = time.perf_counter()
            questions = {str(q["id"]): q["text"] for q in read_jsonl(folder / split.queries)}
            qrels = read_qrels(folder / split.qrels, all_pairs_relevant=eval_set.all_pairs_relevant)
            qids = [q for q in questions if split.parity is None or int(q) % 2 == split.parity]
            judged = [q for q in qids if qrels.get(q)]
            missing_docs = {d for q in judged for d in qrels[q]} - doc_ids
            chosen = subsample(judged, max_queries(eval_set.name, split.name))
            label = f"{eval_set.name}/{split.name}"
            result = SplitResult(
                eval_set.name, split.name, split.tune, len(chosen), len(judged), len(qids) - len(judged)
            )
            engines: dict[str, list[QueryResult]] = {}

            todo = [(q, questions[q]) for q in chosen if q not in cache["chronsearch"]]
            cs_started = time.perf_counter()
            for r in run_chronsearch(
                index_dir, todo, mode=mode, jobs=jobs, snippets=snippets,
                progress=_Progress(f"{label} chronsearch", len(todo)) if len(todo) > 500 else None,
            ):  # fmt: skip
                cache["chronsearch"][r.qid] = r
            cs_wall = time.perf_counter() - cs_started
            engines["chronsearch"] = [cache["chronsearch"][q] for q in chosen]
            fts_wall = 0.0
            if fts is not None:
                fts_started = time.perf_counter()
                for qid in chosen:
                    if qid not in cache["fts5"]:
                        cache["fts5"][qid] = fts.search(qid, questions[qid])
                fts_wall = time.perf_counter() - fts_started
                engines["fts5"] = [cache["fts5"][q] for q in chosen]
            for name, rs in engines.items():
                result.engines[name] = score_engine(rs, qrels)
            if per_query:
                result.per_query = {
                    q: {name: _first_relevant_rank(cache[name][q].ranked, qrels[q]) for name in engines}
                    for q in chosen
                }
            timing["splits"][split.name] = {
                "chronsearch_wall_s": round(cs_wall, 2),
                "fts5_wall_s": round(fts_wall, 2),
                "qrels_docs_not_in_corpus": len(missing_docs),
                "total_s": round(time.perf_counter() - started, 2),
            }
            results.append(result)
            _log(format_row(result))
    finally:
        if fts is not None:
            fts.close()
    return results, timing


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

_METRIC_ORDER = ("mrr@10", "ndcg@10", "recall@100")


def format_row(r: SplitResult) -> str:
    split = f"{r.split} (tune)" if r.tune else r.split
    count = f"{r.queries}" if r.queries == r.available else f"{r.queries}/{r.available}"
    cells = [f"{r.set:<10} {split:<13} {count:>11}"]
    for name in ("chronsearch", "fts5"):
        score = r.engines.get(name)
        values = [score.metrics[m] for m in _METRIC_ORDER] if score else None
        cells.append("  ".join(f"{v:>7.4f}" for v in values) if values else "      -        -        -")
    return " | ".join(cells)


def format_table(results: Sequence[SplitResult]) -> str:
    metrics = " MRR@10  nDCG@10    R@100"
    lines = [
        f"{'':<10} {'':<13} {'':>11} | {'chronsearch':<25} | FTS5 (trigram ja / porter en)",
        f"{'set':<10} {'split':<13} {'queries':>11} | {metrics} | {metrics}",
        "-" * 97,
    ]
    lines += [format_row(r) for r in results]
    return "\n".join(lines)


def format_notes(results: Sequence[SplitResult], timing: Mapping[str, Any]) -> str:
    lines = ["", "Timing (side note; search ms/query excludes query preparation):"]
    for set_name, t in timing.items():
        cs_index = "reused" if t["chronsearch_index_reused"] else f"{t['chronsearch_index_s']:.1f} s"
        fts_index = f"{t['fts5_index_s']:.1f} s" if t["fts5_index_s"] is not None else "-"
        lines.append(f"  {set_name}: {t['documents']} docs; index chronsearch {cs_index}, FTS5 {fts_index}")
        for r in results:
            if r.set != set_name:
                continue
            st = t["splits"][r.split]
            cs = r.engines["chronsearch"]
            fts = r.engines.get("fts5")
            fts_part = f", FTS5 {fts.ms_per_query:.1f} ms/query" if fts else ""
            lines.append(
                f"    {r.split}: chronsearch {cs.ms_per_query:.1f} ms/query"
                f" (+{cs.prepare_ms_per_query:.1f} ms preparing the query){fts_part};"
                f" wall {st['total_s']:.0f} s"
            )
    lines.append("")
    lines.append("Queries:")
    for r in results:
        skipped = f"{r.no_qrels} without qrels skipped" if r.no_qrels else "all have qrels"
        sampled = f", {r.queries} of {r.available} sampled" if r.queries != r.available else ""
        errs = []
        for name, score in r.engines.items():
            errs.append(f"{name} errors " + (", ".join(f"{k} {v}" for k, v in score.errors.items()) or "none"))
        lines.append(f"  {r.set}/{r.split}: {skipped}{sampled}; " + "; ".join(errs))
        for name, score in r.engines.items():
            for ex in score.error_examples[:2]:
                lines.append(f"      {name} {ex['qid']}: {ex['error'][:150]}")
    for set_name, t in timing.items():
        for split, st in t["splits"].items():
            if st["qrels_docs_not_in_corpus"]:
                lines.append(f"  {set_name}/{split}: {st['qrels_docs_not_in_corpus']} qrels docs are not in the corpus")
        if t.get("title_not_repeated"):
            lines.append(
                f"  {set_name}: {t['title_not_repeated']} docs whose text does not start with the exact title"
                " (indexed as text only all the same)"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/eval.py",
        description="Evaluate chronsearch retrieval (MRR@10, nDCG@10, R@100) next to SQLite FTS5.",
    )
    choices = ", ".join(f"{n}[/{'|'.join(s.name for s in e.splits)}]" for n, e in SETS.items())
    parser.add_argument(
        "--sets", action="append", metavar="SET[/SPLIT],…", help=f"sets or splits to run (default all): {choices}"
    )
    parser.add_argument(
        "--max-queries", action="append", metavar="N | SET[/SPLIT]=N",
        help="evaluate at most N queries per split (a fixed subsample); default all",
    )  # fmt: skip
    parser.add_argument("--eval-dir", help=f"the eval data (default ${EVAL_ENV}, else ../shared/eval)")
    parser.add_argument("--work", help="keep the indexes here and reuse them on later runs (default: a temp dir)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--per-query", action="store_true", help="with --json: each query's first relevant rank")
    parser.add_argument("--jobs", type=int, default=1, help="processes running chronsearch queries (default 1)")
    parser.add_argument("--query-mode", choices=QUERY_MODES, default="raw", help="how questions become queries")
    parser.add_argument("--with-snippets", action="store_true", help="keep chronsearch's highlighter on (slow)")
    parser.add_argument("--no-fts5", action="store_true", help="skip the FTS5 baseline")
    args = parser.parse_args(argv)

    folder = eval_dir(args.eval_dir)
    if not folder.is_dir():
        print(f"eval: no eval data in {folder} (give --eval-dir or set {EVAL_ENV})", file=sys.stderr)
        return 2
    selection = parse_selection(args.sets)
    max_queries = parse_max_queries(args.max_queries)
    fts5_problem = None if args.no_fts5 else fts5_support()

    from chronsearch.schema import index_name

    header = [
        f"chronsearch {importlib.metadata.version('chronsearch')} (index {index_name()}),"
        f" match=any, limit={LIMIT}, query mode {args.query_mode},"
        f" snippets {'on' if args.with_snippets else 'off'}",
        f"SQLite {sqlite3.sqlite_version}: "
        + ("FTS5 skipped (--no-fts5)" if args.no_fts5 else f"FTS5 NOT RUN: {fts5_problem}" if fts5_problem else "FTS5 bm25()"),
    ]  # fmt: skip
    for line in header:
        _log(line)

    all_results: list[SplitResult] = []
    timing: dict[str, Any] = {}
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.work:
            work, reuse = Path(args.work), True
            work.mkdir(parents=True, exist_ok=True)
        else:
            work, reuse = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chronsearch-eval-"))), False
        for name, split_names in selection.items():
            eval_set = SETS[name]
            set_folder = folder / eval_set.folder
            if not set_folder.is_dir():
                print(f"eval: {set_folder} is missing; skipping {name}", file=sys.stderr)
                continue
            splits = [s for s in eval_set.splits if split_names is None or s.name in split_names]
            results, timing[name] = evaluate_set(
                eval_set, set_folder, splits,
                work=work, reuse=reuse, fts5=not args.no_fts5 and fts5_problem is None,
                mode=args.query_mode, jobs=args.jobs, snippets=args.with_snippets,
                max_queries=max_queries, per_query=args.per_query,
            )  # fmt: skip
            all_results += results
    elapsed = time.perf_counter() - started

    print("\n".join(header))
    print()
    print(format_table(all_results))
    print(format_notes(all_results, timing))
    print(f"\nTotal {elapsed / 60:.1f} min.")
    if args.json:
        payload = {
            "chronsearch": importlib.metadata.version("chronsearch"),
            "index_name": index_name(),
            "sqlite": sqlite3.sqlite_version,
            "fts5": None if fts5_problem or args.no_fts5 else "bm25",
            "fts5_problem": fts5_problem,
            "match": "any",
            "limit": LIMIT,
            "query_mode": args.query_mode,
            "snippets": args.with_snippets,
            "max_queries": args.max_queries,
            "results": [r.to_dict() for r in all_results],
            "timing": timing,
            "total_s": round(elapsed, 1),
        }
        Path(args.json).write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
