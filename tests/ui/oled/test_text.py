"""Text cleaning, truncation and word wrapping for the monospaced OLED fonts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.ui.oled.font import body_font, large_font
from pigeon.ui.oled.text import ELLIPSIS, clean, fit, wrap


def test_wrap_breaks_at_spaces() -> None:
    assert wrap("the quick brown fox jumps", 10) == ("the quick", "brown fox", "jumps")


def test_wrap_keeps_newlines_and_blank_lines_but_not_trailing_ones() -> None:
    assert wrap("a\n\nb c\n\n", 5) == ("a", "", "b c")


def test_wrap_splits_words_longer_than_a_line_on_their_own_lines() -> None:
    assert wrap("see https://example.org/abc ok", 8) == (
        "see",
        "https://",
        "example.",
        "org/abc",
        "ok",
    )


def test_wrap_of_blank_text_is_empty_and_columns_must_be_positive() -> None:
    assert wrap("  \n ", 5) == ()
    with pytest.raises(ValueError, match="positive"):
        wrap("x", 0)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300), st.integers(1, 30))
def test_wrap_never_overflows_and_loses_no_word(text: str, columns: int) -> None:
    lines = wrap(text, columns)
    assert all(len(line) <= columns for line in lines)
    assert "".join("".join(lines).split()) == "".join(text.split())


def test_fit_truncates_with_an_ellipsis() -> None:
    assert fit("Bob Marley-Featherstonehaugh", 14) == "Bob Marley-Fe" + ELLIPSIS
    assert fit("short", 14) == "short"
    assert fit("a  b\nc", 10) == "a b c"
    assert fit("abc", 0) == ""


@given(st.text(max_size=80), st.integers(0, 30))
def test_fit_never_overflows(text: str, columns: int) -> None:
    assert len(fit(text, columns)) <= columns


def test_clean_replaces_what_the_font_cannot_draw() -> None:
    font = body_font()
    assert clean("é\u0301x\u200d\ty\x07", font) == "éx y "
    assert clean("e\u0301", font) == "é"  # NFC first, so the mark is not lost
    assert clean("你好 ☃", font) == "\ufffd\ufffd \ufffd"
    assert clean("Ünï", large_font()) == "?n?"


@given(st.text(max_size=100))
def test_clean_gives_one_drawable_cell_per_character(text: str) -> None:
    font = body_font()
    assert all(char == "\n" or font.has(char) for char in clean(text, font))
