"""The command line, through Click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chronsearch.cli import cli

from .conftest import SEEDS
from .test_search import EN

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def loc(seeds_index: Path) -> list[str]:
    return ["--seeds", str(SEEDS), "--index", str(seeds_index)]


def test_search_finds_and_exits_0(loc):
    result = run("search", "Toshiba", *loc)
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [
        "2014     en  2014-industrial-development-events.en.txt:7",
        "  The opening ceremony of Toshiba Medical System Research (Dalian) Co., Ltd. was held.",
    ]
    assert result.output.splitlines()[-1].startswith("1-1 of 1 hits · year: 2014 (1) · lang: en (1) · ")


def test_search_without_hits_exits_1(loc):
    result = run("search", "zeppelin", *loc)
    assert result.exit_code == 1
    assert result.output.startswith("No hits")


def test_malformed_query_is_one_line_on_stderr_and_exit_2(loc):
    result = run("search", "year:abc", *loc)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "chronsearch: error: bad query 'year:abc': 'abc' is not a valid number\n"


def test_json_shape(loc):
    result = run("search", "IBM", "--json", "--limit", "1", *loc)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert set(data) == {"query", "total", "hits", "facets", "expansions", "suggestion", "took_ms"}
    assert data["query"] == "IBM"
    assert data["total"] == 2
    assert set(data["facets"]) == {"year", "month", "lang"}
    assert data["facets"]["lang"] == {"ja": 2}
    (hit,) = data["hits"]
    assert set(hit) == {
        "id", "year", "month", "lang", "source", "line", "text", "score", "snippet", "highlights", "expansions"
    }  # fmt: skip
    assert (hit["year"], hit["lang"], hit["source"]) == (2017, "ja", "2017-park-chronicle.ja.txt")
    # UTF-8, not \u escapes
    assert "ハイテク産業区" in result.output
    assert "\\u" not in result.output
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "IBM"


def test_filters_and_paging_options(loc):
    data = json.loads(run("search", "", "--year", "2017", "--month", "5", "--json", "--limit", "2", "--offset", "1", *loc).output)
    assert data["total"] == 6
    assert [h["month"] for h in data["hits"]] == [5, 5]
    data = json.loads(run("search", "high-tech zone", "--lang", "ja", "--no-glossary", "--json", *loc).output)
    assert data["total"] == 0
    data = json.loads(run("search", "high-tech zone", "--lang", "ja", "--json", *loc).output)
    assert data["total"] == 30  # ハイテク産業区 or 高新区, through the glossary
    assert all(h["expansions"] for h in data["hits"])


def test_any_and_chronological_sort(loc):
    every = json.loads(run("search", "Toshiba 京都", "--json", *loc).output)
    some = json.loads(run("search", "Toshiba 京都", "--any", "--sort", "chronological", "--json", *loc).output)
    assert every["total"] == 0
    assert some["total"] == 3
    assert [h["year"] for h in some["hits"]] == [2014, 2017, 2017]


def test_bad_option_values_are_one_line_errors(loc):
    result = run("search", "IBM", "--month", "13", *loc)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("chronsearch: error: Invalid value for '--month'")


def test_stats_json_counts_match_the_files(loc):
    result = run("stats", "--json", *loc)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["events"] == 92
    assert data["year"] == {"2014": 35, "2017": 57}
    assert data["lang"] == {"en": 35, "ja": 57}
    assert data["source"] == {
        "2014-industrial-development-events.en.txt": 35,
        "2017-park-chronicle.ja.txt": 57,
    }
    # Count the Japanese seed's events per month heading straight from the file.
    expected: dict[str, int] = {}
    month = None
    for line in (SEEDS / "2017-park-chronicle.ja.txt").read_text().splitlines()[2:]:
        if m := re.fullmatch(r"(\d+)月", line.strip()):
            month = f"2017-{int(m[1]):02d}"
        elif line.strip():
            expected[month] = expected.get(month, 0) + 1
    assert data["month"] == expected


def test_stats_text(loc):
    result = run("stats", *loc)
    assert result.output.splitlines()[:2] == [f"92 events in {loc[3]}", "year   2014 (35), 2017 (57)"]


def test_show_by_id_and_by_line(loc):
    by_line = run("show", "2017-park-chronicle.ja.txt:16", "--json", *loc)
    event = json.loads(by_line.output)
    assert event["text"].startswith("高新区党工委書記")
    by_id = run("show", event["id"], *loc)
    assert by_id.exit_code == 0
    assert by_id.output.splitlines()[1] == event["text"]


def test_show_unknown_event(loc):
    result = run("show", "nowhere.txt#4", *loc)
    assert result.exit_code == 2
    assert result.stderr == (
        "chronsearch: error: no event 'nowhere.txt#4' (give an id such as 'file.txt#3' or 'file.txt:12')\n"
    )


def test_color_only_when_asked_or_on_a_terminal(loc):
    assert not ANSI.search(run("search", "IBM", *loc).output)
    colored = run("search", "IBM", "--color", "always", *loc, env={"NO_COLOR": "1"}).output
    assert "\x1b[31m\x1b[1mIBM\x1b[0m" in colored
    assert not ANSI.search(run("search", "IBM", "--color", "never", *loc).output)


def test_search_builds_a_missing_index_and_uses_env_locations(tmp_path: Path):
    env = {"CHRONSEARCH_SEEDS": str(SEEDS), "CHRONSEARCH_INDEX": str(tmp_path / "idx")}
    first = run("search", "Mercedes", env=env)
    assert first.exit_code == 0
    assert first.stderr == f"chronsearch: no index in {tmp_path / 'idx'}/ yet; building it from {SEEDS}/\n"
    second = run("search", "Mercedes", env=env)
    assert second.stderr == ""
    assert second.stdout == first.stdout.replace(_took(first.stdout), _took(second.stdout))


def _took(output: str) -> str:
    return output.rsplit("·", 1)[1]


def test_index_reports_bad_files_and_keeps_the_rest(tmp_path: Path, seeds_copy: Path):
    bad = seeds_copy / "broken.txt"
    bad.write_bytes(b"2015 Events\n\nok\n\n\xff\xfe\xfa broken\n")
    index = tmp_path / "index"
    result = run("index", "--seeds", str(seeds_copy), "--index", str(index))
    assert result.exit_code == 2
    assert result.stderr == (
        f"chronsearch: error: {bad}:5: cannot decode: not UTF-8, UTF-16 with a BOM, or Shift_JIS\n"
    )
    assert result.stdout.startswith(
        "0 changed, 3 added, 0 removed, 0 unchanged files, 1 with errors · +92 −0 events, 92 in all · "
    )
    # Every command that reads the chronicles says so again, with exit code 2, until the file is
    # fixed, as grep does for a file it cannot read; the other files' events still answer.
    loc = ["--seeds", str(seeds_copy), "--index", str(index)]
    for args in (["search", "Toshiba"], ["stats"], ["show", f"{EN}:5"], ["similar", f"{EN}:5"], ["index"]):
        again = run(*args, *loc)
        assert (again.exit_code, again.stderr) == (2, result.stderr), args
        assert again.stdout
    assert "Toshiba" in run("search", "Toshiba", *loc).stdout
    quiet = run("search", "Toshiba", "--no-refresh", *loc)
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    bad.write_bytes(b"2015 Events\n\nok\n")
    fixed = run("stats", *loc)
    assert fixed.exit_code == 0
    assert fixed.stderr.startswith(f"chronsearch: updated {index}: 0 changed, 1 added, 0 removed, 3 unchanged files · +1")


def test_index_json_and_full(tmp_path: Path, seeds_copy: Path):
    loc = ["--seeds", str(seeds_copy), "--index", str(tmp_path / "i")]
    first = json.loads(run("index", "--json", *loc).output)
    assert {k: v for k, v in first.items() if k != "took_ms"} == {
        "added_files": 3,
        "changed_files": 0,
        "removed_files": 0,
        "unchanged_files": 0,
        "events_added": 92,
        "events_removed": 0,
        "events_total": 92,
        "errors": [],
        "rebuilt": None,
    }
    again = run("index", "--json", *loc)
    assert json.loads(again.output)["unchanged_files"] == 3
    full = run("index", "--full", *loc)
    assert full.exit_code == 0
    assert full.stderr == "chronsearch: rebuilt the whole index: asked for (--full)\n"
    assert full.stdout.startswith("3 changed, 0 added, 0 removed, 0 unchanged files · +92 −92 events, 92 in all")


def test_search_refreshes_a_stale_index_unless_told_not_to(tmp_path: Path, seeds_copy: Path):
    index = tmp_path / "index"
    loc = ["--seeds", str(seeds_copy), "--index", str(index)]
    run("index", *loc)
    (seeds_copy / "2018.txt").write_text("2018 Events\n\nA delegation from Nagoya visited.\n")
    stale = run("search", "Nagoya", "--no-refresh", *loc)
    assert (stale.exit_code, stale.stderr) == (1, "")
    fresh = run("search", "Nagoya", *loc)
    assert fresh.exit_code == 0
    assert fresh.stderr.startswith(
        f"chronsearch: updated {index}: 0 changed, 1 added, 0 removed, 3 unchanged files · +1 −0 events, 93 in all"
    )
    assert run("search", "Nagoya", *loc).stderr == ""


def test_no_refresh_without_an_index_says_what_to_run(tmp_path: Path):
    result = run("search", "IBM", "--no-refresh", "--seeds", str(SEEDS), "--index", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"chronsearch: error: {tmp_path / 'none'}: no index here; build it with `chronsearch index`\n"
    )


@pytest.mark.parametrize("command", ["index", "watch", "search", "stats"])
def test_missing_seeds_is_an_error(tmp_path: Path, command: str):
    result = run(command, *(["zone"] if command == "search" else []), "--seeds", str(tmp_path / "none"), "--index", str(tmp_path / "i"))
    assert result.exit_code == 2
    assert result.stderr == f"chronsearch: error: {tmp_path / 'none'}: no such seeds directory\n"


@pytest.mark.parametrize("args", [["search", "zone"], ["stats"], ["show", f"{EN}:5"], ["similar", f"{EN}:5"]])
def test_reading_an_index_without_its_chronicles(seeds_index: Path, tmp_path: Path, args: list[str]):
    result = run(*args, "--no-refresh", "--seeds", str(tmp_path / "none"), "--index", str(seeds_index))
    assert (result.exit_code, result.stderr) == (0, "")


def test_an_index_path_that_is_a_file_is_one_line(tmp_path: Path):
    (tmp_path / "file").write_text("not a folder")
    result = run("search", "zone", "--seeds", str(SEEDS), "--index", str(tmp_path / "file" / "index"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"chronsearch: error: {tmp_path / 'file' / 'index'}: Not a directory"


def test_search_rebuilds_a_damaged_index(tmp_path: Path):
    index = tmp_path / "index"
    loc = ["--seeds", str(SEEDS), "--index", str(index)]
    run("index", "--quiet", *loc)
    (toc,) = index.glob("*.toc")
    toc.write_bytes(toc.read_bytes()[:100])
    refused = run("search", "Toshiba", "--no-refresh", *loc)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"chronsearch: error: {index}: the index is damaged (")
    assert len(refused.stderr.splitlines()) == 1
    rebuilt = run("search", "Toshiba", *loc)
    assert rebuilt.exit_code == 0
    assert rebuilt.stderr.startswith(f"chronsearch: the index in {index}/ is damaged (")
    assert "Toshiba" in rebuilt.stdout
    assert run("search", "Toshiba", *loc).stderr == ""


def test_a_bare_command_shows_the_help():
    result = run()
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: cli [OPTIONS] COMMAND [ARGS]...\n")  # the runner names it cli
    assert "\n  search " in result.stderr


def test_an_old_index_is_rebuilt_by_search(tmp_path: Path):
    from .test_index import old_index

    index = tmp_path / "index"
    old_index(index)
    result = run("search", "ZTE", "--seeds", str(SEEDS), "--index", str(index))
    assert result.exit_code == 0
    assert result.stderr == (
        f"chronsearch: the index in {index}/ is from another version of chronsearch; rebuilding it from {SEEDS}/\n"
    )
    rebuilt = run("index", "--seeds", str(SEEDS), "--index", str(index), "--full", "--quiet")
    assert rebuilt.stderr == ""


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help, name
        result = run(name, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["search", "year:[x TO"],
        ["search", "(((", "--json"],
        ["search"],
        ["frobnicate"],
        ["show"],
        ["search", "IBM", "--limit", "-1"],
    ],
)
def test_no_input_gives_a_traceback(loc, args):
    result = CliRunner().invoke(cli, args + (loc if args[0] in ("search", "show") and len(args) > 1 else []))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 2:
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("chronsearch: error: ")


def test_python_dash_m_runs_the_cli(seeds_index: Path):
    env = {**os.environ, "CHRONSEARCH_SEEDS": str(SEEDS), "CHRONSEARCH_INDEX": str(seeds_index)}
    proc = subprocess.run(
        [sys.executable, "-m", "chronsearch", "search", "ＩＢＭ", "--json"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] == 2
    bad = subprocess.run(
        [sys.executable, "-m", "chronsearch", "search", "month:x"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2
    assert bad.stderr == "chronsearch: error: bad query 'month:x': 'x' is not a valid number\n"


LEVELS = "▁▂▃▄▅▆▇█"


def test_timeline_rows_match_the_facets(loc):
    facets = json.loads(run("search", "", "--json", *loc).output)["facets"]
    result = run("search", "", "--timeline", *loc)
    assert result.exit_code == 0
    header, *rows = result.output.split("\n\n")[0].splitlines()
    assert header.strip() == "JFMAMJJASOND"
    by_year = {int(row[:4]): row for row in rows}
    assert sorted(by_year) == [2014, 2015, 2016, 2017]  # years without matches show as gaps
    for year, row in by_year.items():
        cells, total = row[6:18], int(row[18:].split()[0])
        assert total == facets["year"].get(str(year), 0)
        counts = [facets["month"].get(f"{year}-{m:02d}", 0) for m in range(1, 13)]
        if not any(counts):
            assert cells.strip() in ("", "·" * 12)
            continue
        assert all((cell == "·") == (n == 0) for cell, n in zip(cells, counts))
        heights = [(n, LEVELS.index(cell)) for cell, n in zip(cells, counts) if n]
        assert [h for _, h in sorted(heights)] == sorted(h for _, h in heights)  # more events, higher block
        assert cells[counts.index(max(counts))] == "█"
    assert result.output.rstrip().splitlines()[-1].startswith("92 hits · lang: en (35), ja (57)")


def test_timeline_of_a_filtered_query(loc):
    result = run("search", "設立", "--timeline", "--year", "2017", *loc)
    rows = result.output.split("\n\n")[0].splitlines()[1:]
    assert [row[:4] for row in rows] == ["2017"]
    assert result.output.rstrip().endswith("ms") and "7 hits" in result.output


@pytest.mark.parametrize("query", ["zone", "京都", "zone OR park", '"high tech"', "zone AND NOT park", "year:2014", "zone*"])
def test_an_index_with_no_events_finds_nothing(tmp_path: Path, query: str):
    (tmp_path / "seeds").mkdir()
    loc = ["--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "index")]
    result = run("search", query, "--json", *loc)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["total"] == 0
    assert json.loads(run("stats", "--json", *loc).stdout)["events"] == 0
