"""What stalwart's parsers are held against: the standard library's own readers, unmodified.

Shared by the tests and the fuzz targets in ``fuzz/`` (which put this directory on sys.path).
"""

from __future__ import annotations

import configparser
import csv
from collections.abc import Iterator
from contextlib import contextmanager


def plain_configparser(text: str) -> dict[str, dict[str, str]] | None:
    """What an unmodified configparser, set up as entry_points.txt needs, makes of *text*
    (None: it refuses it)."""
    parser = configparser.ConfigParser(
        delimiters=("=",), interpolation=None, default_section="\x00stalwart: no default section"
    )
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return {section: dict(parser.items(section)) for section in parser.sections()}


@contextmanager
def csv_limit(limit: int) -> Iterator[None]:
    """The process-wide ``csv.field_size_limit`` set to *limit* for a while: stalwart's RECORD
    reader must give the same answer whatever it is."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)
