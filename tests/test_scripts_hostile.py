"""entry_points.txt parsing against hostile text: InvalidWheelError, promptly, with short messages.

Each test reproduces a defect the fuzzers found.
"""

from __future__ import annotations

import configparser

import pytest

from stalwart.errors import MAX_SHOWN, InvalidWheelError
from stalwart.scripts import parse_entry_points, script_specs


def test_a_long_blank_run_without_equals_is_refused_promptly() -> None:
    # configparser's option pattern backtracks quadratically here: 40,000 blanks took 9 s, so
    # this line would take about an hour.
    text = "[console_scripts]\nx" + " " * 1_000_000 + "y\n"
    with pytest.raises(InvalidWheelError) as caught:
        parse_entry_points(text)
    shown = repr(text.splitlines(keepends=True)[1])
    assert caught.value.problems == [
        f"line 2: not 'name = value': {shown[:80]}... ({len(shown)} characters)"
    ]


@pytest.mark.parametrize(
    "line",
    ["a = b = c", "  a   =   b", "a\t=\tb", "a\u3000= b", "a:b=c", "a =", "a  b = c", " = c"],
)
def test_same_result_as_configparser(line: str) -> None:
    text = f"[g]\n{line}\n"
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        with pytest.raises(InvalidWheelError):
            parse_entry_points(text)
        return
    assert parse_entry_points(text) == {"g": dict(parser.items("g"))}


def test_every_bad_line_is_named_and_the_list_is_capped() -> None:
    text = "[console_scripts]\n" + "no delimiter\n" * 5000
    with pytest.raises(InvalidWheelError) as caught:
        parse_entry_points(text)
    problems = caught.value.problems
    assert len(problems) == MAX_SHOWN
    assert problems[0] == "line 2: not 'name = value': 'no delimiter\\n'"
    assert problems[-1] == f"{5000 - MAX_SHOWN + 1} more problems are not listed"


def test_a_flood_of_bad_scripts_is_capped() -> None:
    text = "[console_scripts]\n" + "".join(f"../s{i} = m:f\n" for i in range(5000))
    with pytest.raises(InvalidWheelError) as caught:
        script_specs(text)
    assert len(caught.value.problems) == MAX_SHOWN
    assert caught.value.problems[-1] == f"{5000 - MAX_SHOWN + 1} more problems are not listed"
