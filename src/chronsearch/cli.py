"""The ``chronsearch`` command: thin Click commands over the library.

Exit codes follow grep: 0 when something was found, 1 when nothing was, 2 on
an error. Errors are one line on stderr, ``chronsearch: error: …``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from chronsearch.errors import (
    ChronsearchError,
    IndexDamagedError,
    IndexLockedError,
    IndexMissingError,
    IndexVersionError,
)
from chronsearch.indexing import UpdateStats, freshness, seeds_directory, update
from chronsearch.searching import ChronicleIndex, SearchResults

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_WAIT = 60.0


def _fail(message: str) -> None:
    click.echo(f"chronsearch: error: {message}", err=True)


def _note(message: str) -> None:
    click.echo(f"chronsearch: {message}", err=True)


class _Cli(click.Group):
    """Turns every error into one line on stderr and exit code 2, in one place."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare `chronsearch`: the help, as it is
            click.echo(exc.format_message(), err=True)
            code = 2
        except (ChronsearchError, click.ClickException) as exc:
            message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
            _fail(message.replace("\n", " "))
            code = 2
        except OSError as exc:  # an index or seeds path that is a file, a read-only or full disk…
            _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
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


def _refresh(command: F) -> F:
    return click.option(
        "--no-refresh", is_flag=True, help="Read the index as it is, without updating it from the chronicles first."
    )(command)


def _filters_and_paging(command: F) -> F:
    options = [
        click.option("--year", type=int, help="Only events of this year."),
        click.option("--month", type=click.IntRange(1, 12), help="Only events of this month (1-12)."),
        click.option("--lang", type=click.Choice(["en", "ja", "cjk"]), help="Only events in this language."),
        click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Hits to show."),
        click.option("--offset", type=click.IntRange(min=0), default=0, help="Hits to skip, for paging."),
    ]
    for option in reversed(options):
        command = option(command)
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


def _summary(stats: UpdateStats) -> str:
    failed = f", {len(stats.errors)} with errors" if stats.errors else ""
    return (
        f"{stats.changed_files} changed, {stats.added_files} added, {stats.removed_files} removed,"
        f" {stats.unchanged_files} unchanged files{failed} · +{stats.events_added} −{stats.events_removed} events,"
        f" {stats.events_total} in all · {stats.took_ms:.0f} ms"
    )


def _report(stats: UpdateStats, *, quiet: bool = False) -> None:
    """The update's errors, and why it rebuilt everything if it did, on stderr."""
    if stats.rebuilt and not quiet:
        _note(f"rebuilt the whole index: {stats.rebuilt}")
    for error in stats.errors:
        _fail(error)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress callback that draws a bar on stderr, on a terminal, once an update has run a second."""
    enabled = enabled and sys.stderr.isatty()
    started = time.monotonic()
    bar: Any = None

    def show(done: int, total: int) -> None:
        nonlocal bar
        elapsed = time.monotonic() - started
        if not enabled or elapsed < 1.0:
            return
        if bar is None:
            bar = click.progressbar(
                length=total, label="indexing", file=sys.stderr, show_pos=True, item_show_func=lambda rate: rate
            )
        bar.update(done - bar.pos, current_item=f"{done / elapsed:,.0f} events/s")

    try:
        yield show
    finally:
        if bar is not None:
            bar.render_finish()


def _update(
    seeds: Path, index_dir: Path, *, full: bool = False, wait: float, quiet: bool, jobs: int | None = None
) -> UpdateStats:
    def waiting() -> None:
        if wait and not quiet:
            _note(f"waiting for another process to finish writing {index_dir} (up to {wait:g} s)")

    with _progress(not quiet) as progress:
        return update(seeds, index_dir, full=full, wait=wait, on_wait=waiting, progress=progress, jobs=jobs)


def _open(seeds: Path, index_dir: Path, *, refresh: bool) -> tuple[ChronicleIndex, bool]:
    """Open the index, first bringing it up to date with the chronicles if ``refresh``;
    also whether a chronicle could not be indexed (said on stderr, every time).

    If another process is writing the index, searches go on from its last
    commit; only when there is no usable index yet do they wait for it.
    """
    if refresh:
        seeds_directory(seeds)
    damaged = False
    try:
        ix: ChronicleIndex | None = ChronicleIndex.open(index_dir)
    except (IndexMissingError, IndexVersionError, IndexDamagedError) as exc:
        if not refresh:
            raise
        ix = None
        damaged = isinstance(exc, IndexDamagedError)
        if isinstance(exc, IndexVersionError):
            _note(f"the index in {index_dir}/ is from another version of chronsearch; rebuilding it from {seeds}/")
        elif damaged:
            _note(f"the index in {index_dir}/ is damaged ({exc.reason}); rebuilding it from {seeds}/")
        else:
            _note(f"no index in {index_dir}/ yet; building it from {seeds}/")
    errors: tuple[str, ...] = ()
    if refresh:
        known = freshness(seeds, index_dir)
        if known.fresh and not damaged:
            errors = known.errors
            for error in errors:
                _fail(error)
        else:
            try:
                stats = _update(seeds, index_dir, full=damaged, wait=0.0 if ix else DEFAULT_WAIT, quiet=False)
            except IndexLockedError:
                if ix is None:
                    raise
                _note("another process is updating the index; answering from its last commit")
            else:
                if ix is not None and stats.changed:
                    _note(f"updated {index_dir}: {_summary(stats)}")
                _report(stats, quiet=ix is None)
                errors = stats.errors
    return ix or ChronicleIndex.open(index_dir), bool(errors)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chronsearch")
def cli() -> None:
    """Search the chronicles of industrial-development events, in English and Japanese."""


@cli.command()
@_locations
@click.option("--full", is_flag=True, help="Re-index every file, changed or not.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=DEFAULT_WAIT,
    show_default=True,
    help="Seconds to wait for another process writing the index.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Processes analysing Japanese text [default: one per CPU].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes; errors still show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def index(seeds: Path, index_dir: Path, full: bool, wait: float, jobs: int | None, quiet: bool, as_json: bool) -> int:
    """Update the index from the chronicle files.

    Only files whose content changed are re-indexed, and removed files' events
    are dropped, unless --full re-indexes everything.
    """
    stats = _update(seeds, index_dir, full=full, wait=wait, quiet=quiet, jobs=jobs)
    _report(stats, quiet=quiet)
    if as_json:
        _print_json(stats.to_dict())
    else:
        click.echo(_summary(stats))
    return 2 if stats.errors else 0


@cli.command()
@_locations
@click.option(
    "--debounce",
    type=click.IntRange(10, 60_000),
    default=300,
    show_default=True,
    help="Milliseconds a burst of changes must be quiet before the update.",
)
def watch(seeds: Path, index_dir: Path, debounce: int) -> int:
    """Update the index whenever chronicle files change.

    Prints one line per update; Ctrl-C stops.
    """
    from chronsearch.watch import watch as watch_seeds

    outcomes = watch_seeds(seeds, index_dir, debounce_ms=debounce, wait=DEFAULT_WAIT)
    _note(f"watching {seeds} for changes to the index in {index_dir} (Ctrl-C to stop)")
    first = True
    try:
        for outcome in outcomes:
            if isinstance(outcome, ChronsearchError):
                _fail(str(outcome))
            elif first or outcome.changed or outcome.errors:
                _report(outcome)
                click.echo(f"{time.strftime('%H:%M:%S')} {_summary(outcome)}")
            first = False
    except KeyboardInterrupt:
        pass
    return 0


@cli.command()
@click.argument("query")
@_locations
@_refresh
@_filters_and_paging
@click.option("--any", "match_any", is_flag=True, help="Match any word instead of all words.")
@click.option("--no-glossary", is_flag=True, help="Search only the words as typed, not their glossary equivalents.")
@click.option("--timeline", is_flag=True, help="Show how the matches spread over years and months, not the hits.")
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
    no_refresh: bool,
    no_glossary: bool,
    timeline: bool,
    sort: str,
    as_json: bool,
    color: str,
) -> int:
    """Search the events for QUERY.

    QUERY uses Whoosh's syntax: words, "phrases", AND, OR, NOT, (groups),
    field:value such as year:2017 or lang:ja, ranges such as year:[2014 TO 2016],
    prefix* and fuzzy~. An empty QUERY matches every event.
    """
    ix, had_errors = _open(seeds, index_dir, refresh=not no_refresh)
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
            glossary=not no_glossary,
            snippets=not timeline,
        )
    if as_json:
        _print_json(results.to_dict())
    elif timeline:
        click.echo(format_timeline(results), color=_use_color(color))
    else:
        click.echo(format_results(results, offset=offset), color=_use_color(color))
    if had_errors:
        return 2
    return 0 if results.total else 1


@cli.command()
@click.argument("event_id", metavar="ID")
@_locations
@_refresh
@_filters_and_paging
@_output
def similar(
    event_id: str,
    seeds: Path,
    index_dir: Path,
    no_refresh: bool,
    year: int | None,
    month: int | None,
    lang: str | None,
    limit: int,
    offset: int,
    as_json: bool,
    color: str,
) -> int:
    """Find the events most like event ID, in either language.

    ID is an event id ('file.txt#3') or a file and line ('file.txt:12').
    """
    ix, had_errors = _open(seeds, index_dir, refresh=not no_refresh)
    with ix:
        event = ix.get(event_id)
        results = ix.similar(event_id, year=year, month=month, lang=lang, limit=limit, offset=offset)
    if as_json:
        _print_json(results.to_dict())
    else:
        header = _header(event.year, event.month, event.lang, event.source, event.line)
        text = f"Events like {header}\n  {event.text}\n\n" + format_results(results, offset=offset)
        click.echo(text, color=_use_color(color))
    if had_errors:
        return 2
    return 0 if results.total else 1


@cli.command()
@click.argument("event_id", metavar="ID")
@_locations
@_refresh
@_output
def show(event_id: str, seeds: Path, index_dir: Path, no_refresh: bool, as_json: bool, color: str) -> int:
    """Show one event in full.

    ID is an event id ('file.txt#3') or a file and line ('file.txt:12').
    """
    ix, had_errors = _open(seeds, index_dir, refresh=not no_refresh)
    with ix:
        event = ix.get(event_id)
    if as_json:
        _print_json(event.to_dict())
    else:
        header = _header(event.year, event.month, event.lang, event.source, event.line)
        click.echo(f"{header}  {click.style(event.id, dim=True)}\n{event.text}", color=_use_color(color))
    return 2 if had_errors else 0


@cli.command()
@_locations
@_refresh
@_output
def stats(seeds: Path, index_dir: Path, no_refresh: bool, as_json: bool, color: str) -> int:
    """Count the events per year, month, language and file."""
    ix, had_errors = _open(seeds, index_dir, refresh=not no_refresh)
    with ix:
        counts = ix.stats()
    if as_json:
        _print_json(counts.to_dict())
    else:
        lines = [f"{counts.events} events in {index_dir}"]
        for name in ("year", "month", "lang", "source"):
            lines.append(f"{name:<7}" + _join_counts(getattr(counts, name)))
        click.echo("\n".join(lines), color=_use_color(color))
    return 2 if had_errors else 0


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


def _via(expansions: tuple[tuple[str, str], ...]) -> str:
    """Which glossary equivalents found a hit, after its header."""
    if not expansions:
        return ""
    pairs = ", ".join(f"{typed} → {name}" for typed, name in expansions)
    return "  " + click.style(f"(glossary: {pairs})", fg="blue")


def format_results(results: SearchResults, *, offset: int = 0) -> str:
    """The human form of ``results``: a header and snippet per hit, then one facet line."""
    blocks = [
        f"{_header(h.year, h.month, h.lang, h.source, h.line)}{_via(h.expansions)}\n  {_marked(h.snippet, h.highlights)}"
        for h in results.hits
    ]
    blocks.append(_summary_line(results, offset))
    if results.suggestion is not None:
        blocks.append(f"Did you mean: {click.style(results.suggestion, bold=True)}")
    return "\n\n".join(blocks)


def _summary_line(results: SearchResults, offset: int = 0) -> str:
    """Which hits are shown, and the facet counts over all matches."""
    if results.hits:
        shown = f"{offset + 1}-{offset + len(results.hits)} of {results.total} hits"
    elif results.total:
        shown = f"0 of {results.total} hits"  # paged past the last
    else:
        shown = "No hits"
    summary = [shown]
    for name in ("year", "month", "lang"):
        if results.facets.get(name):
            summary.append(f"{name}: {_join_counts(results.facets[name])}")
    summary.append(f"{results.took_ms:.1f} ms")
    return click.style(" · ".join(summary), dim=True)


_LEVELS = "▁▂▃▄▅▆▇█"
_BAR_WIDTH = 40


def format_timeline(results: SearchResults) -> str:
    """A histogram of all matches: a row per year, with a cell per month and a bar for the year.

    Every year from the first match to the last gets a row, so gaps show. A month
    cell is ``·`` when it has no match, else a block as high as its count is
    against the busiest month; events without a month count in the year only.
    """
    years = {int(year): n for year, n in results.facets.get("year", {}).items()}
    if not years:
        return _summary_line(results)
    months = results.facets.get("month", {})
    busiest_month = max(months.values(), default=1)
    busiest_year = max(years.values())
    rows = [" " * 6 + click.style("JFMAMJJASOND", dim=True)]
    for year in range(min(years), max(years) + 1):
        counts = [months.get(f"{year}-{month:02d}", 0) for month in range(1, 13)]
        cells = "".join(_LEVELS[(n * len(_LEVELS) - 1) // busiest_month] if n else "·" for n in counts)
        total = years.get(year, 0)
        if total and not any(counts):
            cells = " " * 12  # a year whose events have no month
        bar = "█" * max(1, round(total * _BAR_WIDTH / busiest_year)) if total else ""
        rows.append(f"{click.style(str(year), fg='yellow')}  {click.style(cells, fg='cyan')}  {total:>{len(str(busiest_year))}}  {bar}")
    langs = _join_counts(results.facets.get("lang", {}))
    summary = click.style(f"{results.total} hits · lang: {langs} · {results.took_ms:.1f} ms", dim=True)
    return "\n".join(rows) + "\n\n" + summary


def main() -> None:
    cli(prog_name="chronsearch")
