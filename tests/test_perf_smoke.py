"""The performance benchmark runs end to end on a tiny corpus and reports every figure.

No timing is asserted: only that the table and the JSON hold every row, with
numbers that make sense. Skipped where the scale corpora (``../shared/scale``) are absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import perf  # noqa: E402
from benchmarks.scale import CORPORA, SHARED_SCALE  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all((SHARED_SCALE / f"{name}.tar.xz").exists() for name in CORPORA.values()),
    reason="the scale corpora (../shared/scale) are not here",
)

EVENTS = 80


def positive(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    work = tmp_path_factory.mktemp("perf")
    out = work / "perf.json"
    args = ["--events", str(EVENTS), "--corpora", "en-news,ja-text", "--work", str(work), "--json", str(out),
            "--queries", "3", "--repeat", "1", "--cold-repeat", "1", "--profile", "common"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        perf.main(args)
    return json.loads(out.read_text(encoding="utf-8")), printed.getvalue()


def test_every_category_is_timed_on_both_engines(report: tuple[dict, str]) -> None:
    data, _ = report
    by_corpus = {r["corpus"]: r for r in data["corpora"]}
    assert set(by_corpus) == {"en-news", "ja-text"}
    expected = {
        "en-news": set(perf.CATEGORIES) - {"compound"},
        "ja-text": set(perf.CATEGORIES),
    }
    for corpus, result in by_corpus.items():
        assert set(result["categories"]) == expected[corpus], corpus
        for name, row in result["categories"].items():
            for engine in ("chronsearch", "fts5"):
                side = row[engine]
                assert len(side["ms"]) == len(side["totals"]) == len(row["queries"]) > 0, (corpus, name)
                assert positive(side["p50_ms"]) and side["p95_ms"] >= side["p50_ms"], (corpus, name, engine)
                assert all(total >= 0 for total in side["totals"])
            agree = row["totals"]["agree"]
            assert 0 <= agree <= 1


def test_queries_come_from_the_corpus_and_find_something(report: tuple[dict, str]) -> None:
    data, _ = report
    for result in data["corpora"]:
        for name in ("rare", "common", "and", "phrase"):
            row = result["categories"].get(name)
            if row:  # every query was taken from an event, so FTS5 finds it
                assert all(total > 0 for total in row["fts5"]["totals"]), (result["corpus"], name)
        # Kanji and katakana words mean the same thing to both engines.
        if result["lang"] == "ja":
            assert result["categories"]["compound"]["totals"]["agree"] == 1


def test_build_size_memory_and_cold_processes(report: tuple[dict, str]) -> None:
    data, _ = report
    for result in data["corpora"]:
        assert result["events"] == EVENTS
        for engine in ("chronsearch", "fts5"):
            build = result["build"][engine]
            assert build["events"] == EVENTS
            assert positive(build["seconds"]) and positive(build["index_mb"]) and positive(build["max_rss_mb"])
            assert positive(result["search_rss_mb"][engine])
            assert positive(result["cold"][engine]["ms"])
        assert result["profile"] and "cumulative" in result["profile"]
    assert [row["query"] for row in data["seeds_cold"]] == ["zone", "ハイテク産業区"]
    assert all(positive(row["chronsearch"]["ms"]) and positive(row["fts5"]["ms"]) for row in data["seeds_cold"])
    assert data["machine"]["cpus"] >= 1


def test_an_unchanged_index_is_reused(report: tuple[dict, str]) -> None:
    data, _ = report
    folder = Path(data["corpora"][0]["work"])
    again = perf.ensure_index(folder / "seeds", folder / "index", rebuild=False)
    assert again["reused"] is True and again["events"] == EVENTS


def _ensure_after_editing_the_record(data: dict, edit) -> dict:
    """``ensure_index`` of the first corpus once ``edit`` has changed its build record."""
    folder = Path(data["corpora"][0]["work"])
    record_file = folder / "index.build.json"
    record = json.loads(record_file.read_text(encoding="utf-8"))
    edit(record)
    record_file.write_text(json.dumps(record), encoding="utf-8")
    return perf.ensure_index(folder / "seeds", folder / "index", rebuild=False)


def test_an_index_built_by_other_code_is_rebuilt(report: tuple[dict, str]) -> None:
    def other_analysis(record: dict) -> None:
        assert "chronsearch.analysis" in record["code"]
        record["code"]["chronsearch.analysis"] = "another version"

    again = _ensure_after_editing_the_record(report[0], other_analysis)
    assert again["reused"] is False and again["events"] == EVENTS


def test_a_record_of_module_paths_from_an_older_benchmark_means_a_rebuild(report: tuple[dict, str]) -> None:
    def module_paths(record: dict) -> None:
        record["code"] = {"/elsewhere/src/chronsearch/__init__.py": "a hash"}

    again = _ensure_after_editing_the_record(report[0], module_paths)
    assert again["reused"] is False and again["events"] == EVENTS


def test_table_shows_every_row_with_a_ratio(report: tuple[dict, str]) -> None:
    _, printed = report
    for label in perf.LABELS.values():
        assert f"| {label} (" in printed
    for row in ("index build", "peak RSS, indexing process", "index size on disk", "search process RSS"):
        assert f"| {row}" in printed
    assert "cold process, this index" in printed and "hit counts" in printed
    table_rows = [line for line in printed.splitlines() if line.startswith("| ") and "ms /" in line]
    assert table_rows and all(line.count("×") == 2 for line in table_rows)
