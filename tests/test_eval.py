"""The retrieval-evaluation harness in benchmarks/eval.py.

The metrics are checked on a hand-made mini run with the values worked out in
the comments; the whole harness runs on a tiny made-up collection; and a smoke
run indexes a slice of JSQuAD through the real pipeline (skipped when the eval
data, ../shared/eval, is not there).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.eval import (  # noqa: E402
    SETS,
    Fts5Index,
    corpus_events,
    document_text,
    eval_dir,
    evaluate,
    fts5_query,
    fts5_support,
    main,
    mrr_at,
    ndcg_at,
    neutralize,
    prepare_query,
    read_jsonl,
    read_qrels,
    recall_at,
    run_chronsearch,
    search_one,
    subsample,
)
from chronsearch import ChronicleIndex, Event  # noqa: E402
from chronsearch.indexing import index_events  # noqa: E402
from chronsearch.schema import CONTENT_FIELDS, make_schema  # noqa: E402
from chronsearch.searching import parse_query  # noqa: E402
from whoosh import query as wq  # noqa: E402

# ---------------------------------------------------------------------------
# Metrics, by hand
# ---------------------------------------------------------------------------


def test_relevant_at_rank_3() -> None:
    ranked = ["a", "b", "r", "c"]
    assert mrr_at(ranked, {"r"}) == pytest.approx(1 / 3)
    # DCG = 1/log2(3 + 1) = 1/2; ideal DCG (one relevant doc, at rank 1) = 1/log2(2) = 1.
    assert ndcg_at(ranked, {"r"}) == pytest.approx(0.5)
    assert recall_at(ranked, {"r"}) == 1.0


def test_two_relevant_at_ranks_1_and_4() -> None:
    ranked = ["r1", "a", "b", "r2", "c"]
    assert mrr_at(ranked, {"r1", "r2"}) == 1.0
    # DCG = 1/log2(2) + 1/log2(5) = 1 + 0.430677 = 1.430677
    # ideal = 1/log2(2) + 1/log2(3) = 1 + 0.630930 = 1.630930  ->  nDCG = 0.877215
    assert ndcg_at(ranked, {"r1", "r2"}) == pytest.approx(0.877215, abs=1e-6)
    assert recall_at(ranked, {"r1", "r2"}) == 1.0
    # Only r1 within the first 3: recall@3 = 1/2.
    assert recall_at(ranked, {"r1", "r2"}, k=3) == 0.5


def test_cutoffs() -> None:
    ranked = [f"d{i}" for i in range(1, 11)] + ["r"]  # r at rank 11
    assert mrr_at(ranked, {"r"}) == 0.0
    assert ndcg_at(ranked, {"r"}) == 0.0
    assert recall_at(ranked, {"r"}) == 1.0  # within 100
    assert recall_at(ranked, {"r"}, k=10) == 0.0
    # Three relevant, one found: recall 1/3. Found at rank 2 of 3 relevant:
    # DCG = 1/log2(3) = 0.630930; ideal = 1 + 1/log2(3) + 1/log2(4) = 2.130930 -> 0.296082
    assert recall_at(["x", "r1"], {"r1", "r2", "r3"}) == pytest.approx(1 / 3)
    assert ndcg_at(["x", "r1"], {"r1", "r2", "r3"}) == pytest.approx(0.296082, abs=1e-6)


def test_more_relevant_than_k_caps_the_ideal() -> None:
    relevant = {f"r{i}" for i in range(12)}
    ranked = sorted(relevant)[:10]  # ten relevant docs fill the top 10: a perfect top 10
    assert ndcg_at(ranked, relevant) == pytest.approx(1.0)
    assert recall_at(ranked, relevant) == pytest.approx(10 / 12)


def test_no_hits_and_repeated_ids() -> None:
    assert (mrr_at([], {"r"}), ndcg_at([], {"r"}), recall_at([], {"r"})) == (0.0, 0.0, 0.0)
    assert ndcg_at(["r"], set()) == 0.0 and recall_at(["r"], set()) == 0.0
    # A repeated id keeps its first rank and takes no rank of its own: r is 2nd.
    assert mrr_at(["a", "a", "r"], {"r"}) == 0.5
    assert recall_at(["r", "r", "x"], {"r", "s"}) == 0.5


def test_evaluate_means_over_judged_queries() -> None:
    qrels = {"q1": {"d1"}, "q2": {"d2", "d5"}, "q3": {"d9"}, "q4": set()}
    run = {"q1": ["d3", "d4", "d1"], "q2": ["d2", "x", "y", "d5"], "q3": ["d1"], "q4": ["d1"]}
    scores = evaluate(run, qrels)
    # q4 has no relevant doc: left out. q1: rank 3; q2: ranks 1 and 4; q3: not found.
    assert scores["mrr@10"] == pytest.approx((1 / 3 + 1 + 0) / 3)  # 0.444444
    ndcg_q2 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))  # 0.877215, as above
    assert scores["ndcg@10"] == pytest.approx((0.5 + ndcg_q2 + 0) / 3)  # 0.459072
    assert scores["ndcg@10"] == pytest.approx(0.459072, abs=1e-6)
    assert scores["recall@100"] == pytest.approx(2 / 3)
    # A judged query missing from the run counts as no hits.
    assert evaluate({}, {"q1": {"d1"}}) == {"mrr@10": 0.0, "ndcg@10": 0.0, "recall@100": 0.0}


# ---------------------------------------------------------------------------
# Data and query preparation
# ---------------------------------------------------------------------------


def test_read_qrels(tmp_path: Path) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text("1\t10\t2\n1\t11\t0\n2\t12\t-1\n2\t13\t1\n", encoding="utf-8")
    assert read_qrels(path) == {"1": {"10"}, "2": {"13"}}
    assert read_qrels(path, all_pairs_relevant=True) == {"1": {"10", "11"}, "2": {"12", "13"}}


def test_document_text() -> None:
    assert document_text("梅雨", "梅雨（つゆ）は…") == "梅雨\n梅雨（つゆ）は…"
    # Cranfield's body starts with its title already.
    assert document_text("a wing .", "a wing . a study", title_in_text=True) == "a wing . a study"
    assert document_text("", "", title_in_text=True) == ""
    assert document_text("title only", "") == "title only"


def test_subsample_is_fixed_and_keeps_order() -> None:
    qids = [f"q{i}" for i in range(100)]
    picked = subsample(qids, 7)
    assert len(picked) == 7 and picked == subsample(list(qids), 7)
    assert picked == sorted(picked, key=qids.index)
    assert subsample(qids, None) == qids and subsample(qids, 500) == qids


def _leaves_are_plain(q: wq.Query) -> bool:
    if q is wq.NullQuery:  # every word was a stop word ("and or not")
        return True
    return all(
        isinstance(leaf, (wq.Term, wq.Phrase)) and leaf.fieldname in CONTENT_FIELDS for leaf in q.leaves()
    )


@pytest.mark.parametrize(
    "question",
    [
        'what is "x" (y) a:b c* d? NOT e ~2 ^3 [a TO b] {c TO d} year:>=2015 lang:ja <x> = \\ oseen\'s \'quoted\'',
        "AND OR NOT",
        "year:abc",
        "誰?",
        "手塚治虫の出身地はどこになりますか?",
        "「奈良の大仏」の高さは何メートル(約)なの?",
    ],
)
def test_prepared_queries_are_plain_words(question: str) -> None:
    prepared = prepare_query(question)
    assert not set(prepared) & set(':"()[]{}*?~^<>=\\')
    if prepared.strip():
        q = parse_query(prepared, make_schema(), match="any")  # must not raise
        assert _leaves_are_plain(q), q


def test_japanese_questions_are_split_into_words() -> None:
    question = "手塚治虫の出身地はどこになりますか?"
    # As written, the question is one Whoosh word: a wildcard (the "?").
    assert not _leaves_are_plain(parse_query(question, make_schema(), match="any"))
    # Neutralized, match="any" splits it into its words itself.
    q = parse_query(prepare_query(question), make_schema(), match="any")
    assert {leaf.text for leaf in q.leaves() if isinstance(leaf, wq.Term) and leaf.fieldname == "morph"} >= {"手塚", "出身"}
    words = prepare_query(question, "words").split()
    assert {"出身", "どこ"} <= set(words)
    assert "の" not in words and "は" not in words  # particles are left out
    assert prepare_query(question, "raw") == neutralize(question) == "手塚治虫の出身地はどこになりますか"


def test_neutralize_keeps_english_words() -> None:
    assert neutralize("heat AND mass (transfer) NOT*") == "heat and mass transfer not"
    assert neutralize("flows REQUIRE ANDMAYBE cooling") == "flows require andmaybe cooling"
    assert neutralize("oseen's 'law'") == "oseen's law"
    assert neutralize("high-speed aircraft .") == "high-speed aircraft ."


def test_fts5_queries() -> None:
    assert fts5_query("東京タワー?", "ja") == '"東京タ" OR "京タワ" OR "タワー"'
    assert fts5_query("ＡＢ", "ja") == ""  # too short for a trigram
    assert fts5_query("Heat-transfer AND heat?", "en") == '"heat" OR "transfer" OR "and"'


# ---------------------------------------------------------------------------
# The whole harness on a tiny made-up collection (no eval data needed)
# ---------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_main_on_a_tiny_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "eval" / SETS["cranfield"].folder
    folder.mkdir(parents=True)
    _write_jsonl(
        folder / "corpus.jsonl",
        [
            {"id": "1", "title": "wing flutter .", "text": "wing flutter . flutter of a swept wing at high speed ."},
            {"id": "2", "title": "heat transfer .", "text": "heat transfer . heat transfer in a laminar boundary layer ."},
            {"id": "3", "title": "shock waves .", "text": "shock waves . shock waves in a nozzle ."},
        ],
    )
    _write_jsonl(
        folder / "queries.jsonl",
        [
            {"id": "1", "text": "what is (wing) flutter?"},
            {"id": "2", "text": "heat transfer in boundary layers ."},
            {"id": "3", "text": "no such query in the qrels"},
            {"id": "4", "text": "???"},
        ],
    )
    (folder / "qrels.tsv").write_text("1\t1\t1\n2\t2\t-1\n4\t3\t2\n", encoding="utf-8")
    out = tmp_path / "results.json"
    argv = ["--eval-dir", str(tmp_path / "eval"), "--sets", "cranfield", "--work", str(tmp_path / "work")]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "cranfield" in printed and "MRR@10" in printed

    data = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["split"]: r for r in data["results"]}
    assert set(rows) == {"odd", "even", "all"}
    # Query 3 has no qrels; query 4 is blank once its syntax is neutralised.
    assert (rows["all"]["queries"], rows["all"]["no_qrels"]) == (3, 1)
    assert rows["all"]["chronsearch"]["errors"] == {"empty": 1}
    assert rows["odd"]["chronsearch"]["mrr@10"] == pytest.approx(1.0)  # query 1: doc 1 first
    assert rows["even"]["chronsearch"]["mrr@10"] == pytest.approx(0.5)  # query 2 found, query 4 blank
    assert rows["all"]["chronsearch"]["mrr@10"] == pytest.approx(2 / 3)
    if data["fts5"]:
        assert rows["all"]["fts5"]["mrr@10"] == pytest.approx(2 / 3)
    assert data["timing"]["cranfield"]["chronsearch_index_reused"] is False

    # A second run with the same --work reuses the index.
    assert main([*argv, "--json", str(out), "--no-fts5"]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["timing"]["cranfield"]["chronsearch_index_reused"] is True
    assert data["results"][0]["chronsearch"]["mrr@10"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# Smoke run on a slice of JSQuAD, through the real pipeline
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jsquad() -> Path:
    folder = eval_dir() / SETS["jsquad"].folder
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"no eval data in {folder.parent}")
    return folder


@pytest.fixture(scope="module")
def jsquad_slice(jsquad: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event], dict, list]:
    """200 JSQuAD paragraphs indexed as events, and up to 50 valid questions on them."""
    events = corpus_events(SETS["jsquad"], jsquad)[:200]
    ids = {e.id for e in events}
    qrels = read_qrels(jsquad / "qrels-valid.tsv")
    questions = [
        (str(q["id"]), q["text"])
        for q in read_jsonl(jsquad / "queries-valid.jsonl")
        if qrels.get(str(q["id"])) and qrels[str(q["id"])] <= ids
    ]
    questions = [questions[i] for i in range(0, len(questions), max(1, len(questions) // 50))][:50]
    index = tmp_path_factory.mktemp("jsquad-slice")
    assert index_events(events, index) == len(events)
    return index, events, qrels, questions


def _sane(scores: dict[str, float]) -> None:
    assert set(scores) == {"mrr@10", "ndcg@10", "recall@100"}
    assert all(0.0 <= v <= 1.0 for v in scores.values()), scores


def test_smoke_jsquad_slice(jsquad_slice: tuple[Path, list[Event], dict, list]) -> None:
    index, events, qrels, questions = jsquad_slice
    assert len(questions) >= 20
    results = run_chronsearch(index, questions)
    assert [r.qid for r in results] == [q for q, _ in questions]
    assert not [r for r in results if r.error]
    scores = evaluate({r.qid: r.ranked for r in results}, {q: qrels[q] for q, _ in questions})
    _sane(scores)
    # These questions copy their paragraph's words.
    assert scores["mrr@10"] > 0.5, scores


def test_smoke_fts5_slice(jsquad_slice: tuple[Path, list[Event], dict, list]) -> None:
    if problem := fts5_support():
        pytest.skip(problem)
    _, events, qrels, questions = jsquad_slice
    fts = Fts5Index(((e.id, e.text) for e in events), "ja")
    try:
        results = [fts.search(qid, text) for qid, text in questions]
    finally:
        fts.close()
    scores = evaluate({r.qid: r.ranked for r in results}, {q: qrels[q] for q, _ in questions})
    _sane(scores)
    assert scores["mrr@10"] > 0.5, scores


def test_no_snippets_same_ranking(jsquad_slice: tuple[Path, list[Event], dict, list]) -> None:
    """The harness searches without snippets; the ranking must not change."""
    index, _, _, questions = jsquad_slice
    sample = questions[:5]
    with ChronicleIndex.open(index) as ix:
        fast = [search_one(ix, qid, text, limit=20) for qid, text in sample]
        full = [search_one(ix, qid, text, limit=20, snippets=True) for qid, text in sample]
    assert [r.ranked for r in fast] == [r.ranked for r in full]
    assert all(r.ranked for r in full)
