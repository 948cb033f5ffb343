"""Small generated chronicle corpora for tests that need many files or a long update."""

from __future__ import annotations

from pathlib import Path

MONTHS = ["January", "March", "June", "October"]


def event_text(file: int, event: int, version: int) -> str:
    if event % 5 == 0:
        return f"第{file}号ファイルの第{event}事象、ハイテク産業区に企業が設立された（版{version}）。"
    return f"Event {event} of file {file}, version {version}: a Dalian high-tech zone company opened a centre."


def write_corpus(root: Path, *, files: int, events: int, version: int = 0) -> dict[str, list[str]]:
    """Write ``files`` chronicles of ``events`` events each; returns each file's event texts."""
    root.mkdir(parents=True, exist_ok=True)
    texts: dict[str, list[str]] = {}
    for f in range(files):
        name = f"{2000 + f % 20}-chronicle-{f:03d}.txt"
        lines = [f"{2000 + f % 20} Events", ""]
        texts[name] = []
        for e in range(events):
            if e % (events // len(MONTHS) or 1) == 0 and e // (events // len(MONTHS) or 1) < len(MONTHS):
                lines += [MONTHS[e // (events // len(MONTHS) or 1)], ""]
            text = event_text(f, e, version)
            texts[name].append(text)
            lines += [text, ""]
        (root / name).write_text("\n".join(lines), encoding="utf-8")
    return texts
