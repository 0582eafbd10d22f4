"""Fuzz what the web page parses from a browser: JSON bodies, form bodies, check-in minutes, and
the paired-browser store. Only BadRequest (and ValueError from the store parser) may escape."""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.ui.web.errors import BadRequest
    from pigeon.ui.web.pairing import decode_sessions
    from pigeon.ui.web.requests import parse_form, parse_json_object, parse_minutes, require_str


def fuzz_one_input(data: bytes) -> None:
    """Feed `data` to every browser-facing parser; each must answer or raise its typed error."""
    with contextlib.suppress(BadRequest):
        require_str(parse_json_object(data), "text", max_len=4096)
    with contextlib.suppress(BadRequest):
        parse_minutes(parse_form(data).get("minutes", ""))
    with contextlib.suppress(BadRequest):
        parse_minutes(data.decode("utf-8", errors="replace"))
    with contextlib.suppress(ValueError):
        decode_sessions(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
