"""Event files to JSON objects: JSONL lines and CSV rows, each with its line number."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from schemas.validation import NOT_JSON, NOT_UTF8, UNKNOWN_FIELD, Rejection, decode_object

# One record of a file: its line number and the object read, or why it could not be read.
Record = tuple[int, dict[str, Any] | Rejection]

# CSV cells that hold JSON text rather than a plain value.
JSON_CELLS = frozenset({"props", "items"})


def _object(raw: bytes) -> dict[str, Any] | Rejection:
    try:
        return decode_object(raw)
    except Rejection as rejection:
        return rejection


def read_jsonl(path: Path) -> Iterator[Record]:
    """One JSON object per line; blank lines are skipped, line numbers start at 1."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            raw = line.strip()
            if raw:
                yield number, _object(raw)


def _row(cells: dict[str | None, Any]) -> dict[str, Any] | Rejection:
    extra = cells.pop(None, None)
    if extra:
        return Rejection(UNKNOWN_FIELD, None, f"{len(extra)} cell(s) more than the header has")
    data: dict[str, Any] = {}
    for name, cell in cells.items():
        if name is None or cell is None or cell == "":
            continue  # an empty (or missing) cell means the field is absent
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as bad:
            return Rejection(NOT_UTF8, name, f"invalid UTF-8 in cell at character {bad.start}")
        if name in JSON_CELLS:
            try:
                data[name] = orjson.loads(cell)
            except orjson.JSONDecodeError as exc:
                return Rejection(NOT_JSON, name, f"cell is not JSON: {exc}")
        else:
            data[name] = cell
    return data


def read_csv(path: Path) -> Iterator[Record]:
    """Rows under a header row; the line number is the row's (last) line in the file."""
    # Undecodable bytes survive as surrogates, so that only their row is rejected.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as text:
        reader = csv.DictReader(text)
        for cells in reader:
            yield reader.line_num, _row(dict(cells))


def read_events(path: Path, fmt: str) -> Iterator[Record]:
    """Records of a `jsonl` or `csv` file."""
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path)
    raise ValueError(f"unknown format {fmt!r}: use jsonl or csv")


def format_of(path: Path) -> str | None:
    """The format a file's extension names (`.jsonl`, `.ndjson`, `.csv`), if any."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    return None
