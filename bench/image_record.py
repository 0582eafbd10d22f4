"""Merge figures measured by the image's QEMU tests into bench/results/image.json.

The image tests are shell scripts that boot the flashed image under QEMU (image/test.sh,
image/wear.sh, image/pulled-plugs.sh); each hands its figures here as `KEY=VALUE` pairs under a
section name, so one file holds the latest figure of every run.
Usage: python3 bench/image_record.py SECTION KEY=VALUE...   (VALUE parsed as JSON when it can be)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "image.json"


def parse_value(text: str) -> Any:
    """A JSON number, list or object if `text` is one, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def merge(results: dict[str, Any], section: str, pairs: list[str]) -> dict[str, Any]:
    """`results` with `section` updated by the KEY=VALUE `pairs`."""
    entry = dict(results.get(section, {}))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"not KEY=VALUE: {pair!r}")
        entry[key] = parse_value(value)
    return {**results, section: entry}


def record(section: str, facts: dict[str, Any]) -> None:
    """Merge `facts` into `section` of the results file (the image checkers' verdicts)."""
    pairs = [f"{key}={json.dumps(value)}" for key, value in facts.items()]
    write(merge(read(), section, pairs))


def read() -> dict[str, Any]:
    """The results file's sections (none yet: empty)."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def write(results: dict[str, Any]) -> None:
    """Replace the results file with `results`."""
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    """Merge argv's figures into the results file."""
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    write(merge(read(), argv[0], argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
