"""The ``chronsearch`` command: thin Click commands over the library.

Exit codes follow grep: 0 when something was found, 1 when nothing was, 2 on
an error. Errors are one line on stderr, ``chronsearch: error: …``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from chronsearch.errors import ChronsearchError, IndexMissingError, IndexVersionError
from chronsearch.indexing import BuildStats, build
from chronsearch.searching import ChronicleIndex, SearchResults

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str) -> None:
    click.echo(f"chronsearch: error: {message}", err=True)


class _Cli(click.Group):
    """Turns every error into one line on stderr and exit code 2, in one place."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except (ChronsearchError, click.ClickException) as exc:
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            _fail(message.replace("\n", " "))
            code = 2
        except (click.Abort, KeyboardInterrupt):
            click.echo("", err=True)
            code = 130
        except BrokenPipeError:
            # The reader (``| head``) went away; say nothing more.
            sys.stderr.close()
            code = 0
        sys.exit(code if isinstance(code, int) else 0)


def _locations(command: F) -> F:
    command = click.option(
        "--index",
        "index_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default="index",
        show_default=True,
        envvar="CHRONSEARCH_INDEX",
        help="Index directory [env: CHRONSEARCH_INDEX].",
    )(command)
    command = click.option(
        "--seeds",
        type=click.Path(file_okay=False, path_type=Path),
        default="seeds",
        show_default=True,
        envvar="CHRONSEARCH_SEEDS",
        help="Directory of chronicle files [env: CHRONSEARCH_SEEDS].",
    )(command)
    return command


def _output(command: F) -> F:
    command = click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Color the output; auto means on a terminal, unless NO_COLOR is set.",
    )(command)
    command = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(command)
    return command


def _use_color(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _report_errors(stats: BuildStats) -> None:
    for error in stats.errors:
        _fail(error)


def _open(seeds: Path, index_dir: Path) -> tuple[ChronicleIndex, BuildStats | None]:
    """Open the index, building it first if there is none or it is out of date."""
    try:
        return ChronicleIndex.open(index_dir), None
    except (IndexMissingError, IndexVersionError) as exc:
        if isinstance(exc, IndexVersionError):
            reason = f"the index in {index_dir} is from another version of chronsearch"
        else:
            reason = f"no index in {index_dir} yet"
        click.echo(f"chronsearch: {reason}; building it from {seeds}", err=True)
        stats = build(seeds, index_dir)
        _report_errors(stats)
        return ChronicleIndex.open(index_dir), stats


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chronsearch")
def cli() -> None:
    """Search the chronicles of industrial-development events, in English and Japanese."""


@cli.command()
@_locations
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def index(seeds: Path, index_dir: Path, as_json: bool) -> int:
    """Build the index from the chronicle files."""
    stats = build(seeds, index_dir)
    _report_errors(stats)
    if as_json:
        _print_json(stats.to_dict())
    else:
        click.echo(f"indexed {stats.events} events from {stats.files} files into {index_dir} in {stats.took_ms:.0f} ms")
    return 2 if stats.errors else 0


@cli.command()
@click.argument("query")
@_locations
@click.option("--year", type=int, help="Only events of this year.")
@click.option("--month", type=click.IntRange(1, 12), help="Only events of this month (1-12).")
@click.option("--lang", type=click.Choice(["en", "ja", "cjk"]), help="Only events in this language.")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Hits to show.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Hits to skip, for paging.")
@click.option("--any", "match_any", is_flag=True, help="Match any word instead of all words.")
@click.option(
    "--sort",
    type=click.Choice(["relevance", "chronological"]),
    default="relevance",
    show_default=True,
    help="Order of the hits.",
)
@_output
def search(
    query: str,
    seeds: Path,
    index_dir: Path,
    year: int | None,
    month: int | None,
    lang: str | None,
    limit: int,
    offset: int,
    match_any: bool,
    sort: str,
    as_json: bool,
    color: str,
) -> int:
    """Search the events for QUERY (Whoosh syntax: AND OR NOT "phrase" year:2017)."""
    ix, built = _open(seeds, index_dir)
    with ix:
        results = ix.search(
            query,
            year=year,
            month=month,
            lang=lang,
            limit=limit,
            offset=offset,
            match="any" if match_any else "all",
            sort=sort,  # type: ignore[arg-type]
        )
    if as_json:
        _print_json(results.to_dict())
    else:
        click.echo(format_results(results, offset=offset), color=_use_color(color))
    if built is not None and built.errors:
        return 2
    return 0 if results.total else 1


@cli.command()
@click.argument("event_id", metavar="ID")
@_locations
@_output
def show(event_id: str, seeds: Path, index_dir: Path, as_json: bool, color: str) -> int:
    """Show one event in full: ID is 'file.txt#3' or 'file.txt:12'."""
    ix, _ = _open(seeds, index_dir)
    with ix:
        event = ix.get(event_id)
    if as_json:
        _print_json(event.to_dict())
    else:
        header = _header(event.year, event.month, event.lang, event.source, event.line)
        click.echo(f"{header}  {click.style(event.id, dim=True)}\n{event.text}", color=_use_color(color))
    return 0


@cli.command()
@_locations
@_output
def stats(seeds: Path, index_dir: Path, as_json: bool, color: str) -> int:
    """Count the indexed events per year, month, language and file."""
    ix, _ = _open(seeds, index_dir)
    with ix:
        counts = ix.stats()
    if as_json:
        _print_json(counts.to_dict())
        return 0
    lines = [f"{counts.events} events in {index_dir}"]
    for name in ("year", "month", "lang", "source"):
        lines.append(f"{name:<7}" + _join_counts(getattr(counts, name)))
    click.echo("\n".join(lines), color=_use_color(color))
    return 0


def _header(year: int, month: int | None, lang: str, source: str, line: int) -> str:
    date = f"{year}-{month:02d}" if month else f"{year}   "
    return (
        f"{click.style(date, fg='yellow')}  {click.style(lang, fg='cyan')}  "
        f"{click.style(source, fg='magenta')}:{click.style(str(line), fg='green')}"
    )


def _join_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} ({n})" for key, n in counts.items())


def _marked(snippet: str, spans: tuple[tuple[int, int], ...]) -> str:
    out, pos = [], 0
    for start, end in spans:
        out.append(snippet[pos:start])
        out.append(click.style(snippet[start:end], fg="red", bold=True))
        pos = end
    out.append(snippet[pos:])
    return "".join(out)


def format_results(results: SearchResults, *, offset: int = 0) -> str:
    """The human form of ``results``: a header and snippet per hit, then one facet line."""
    blocks = [
        f"{_header(h.year, h.month, h.lang, h.source, h.line)}\n  {_marked(h.snippet, h.highlights)}"
        for h in results.hits
    ]
    if results.hits:
        shown = f"{offset + 1}-{offset + len(results.hits)} of {results.total}"
    else:
        shown = f"0 of {results.total}"
    summary = [f"{shown} hits"]
    for name in ("year", "month", "lang"):
        if results.facets.get(name):
            summary.append(f"{name}: {_join_counts(results.facets[name])}")
    summary.append(f"{results.took_ms:.1f} ms")
    blocks.append(click.style(" · ".join(summary), dim=True))
    return "\n\n".join(blocks)


def main() -> None:
    cli(prog_name="chronsearch")
