"""`pigeon selftest`: built-in known answers, and `--noise-vectors FILE` on good and bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.cli import main
from pigeon.crypto.selftest_command import CHECKS, run_checks

HERE = Path(__file__).resolve().parent
SUBSET = HERE / "vectors" / "xx_25519_chachapoly_subset.json"
SHARED = HERE.parents[2] / "shared" / "vectors"


def _last_line(text: str) -> str:
    return text.rstrip().splitlines()[-1]


def test_builtin_checks_pass_and_include_noise(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    assert "ok   noise XX SHA256 (cacophony vector)" in out
    assert _last_line(out) == f"{len(CHECKS)} passed, 0 failed"


def test_a_failing_check_is_reported_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> None:
        raise AssertionError("answer differs")

    assert run_checks({"good": lambda: None, "broken": broken}) == 1
    out = capsys.readouterr().out
    assert "FAIL broken: AssertionError: answer differs" in out
    assert _last_line(out) == "1 passed, 1 failed"


def test_noise_vectors_of_the_subset_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["selftest", "--noise-vectors", str(SUBSET)]) == 0
    out = capsys.readouterr().out
    assert "skipped 0 of 6 vectors" in out
    assert _last_line(out) == "6 passed, 0 failed"


@pytest.mark.parametrize(("file_name", "total"), [("cacophony.json", 944), ("snow.json", 408)])
def test_noise_vectors_of_the_shared_files_pass(
    file_name: str, total: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = SHARED / file_name
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    assert main(["selftest", "--noise-vectors", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"skipped {total - 2} of {total} vectors" in out
    assert _last_line(out) == "2 passed, 0 failed"


def _corrupted_copy(tmp_path: Path, bare_list: bool) -> Path:
    document = json.loads(SUBSET.read_text(encoding="utf-8"))
    vectors = document["vectors"]
    message = vectors[2]["messages"][1]
    message["ciphertext"] = message["ciphertext"][:-2] + (
        "00" if message["ciphertext"][-2:] != "00" else "01"
    )
    vectors[4]["handshake_hash"] = "00" * 32
    path = tmp_path / "corrupted.json"
    path.write_text(json.dumps(vectors if bare_list else document), encoding="utf-8")
    return path


@pytest.mark.parametrize("bare_list", [False, True], ids=["object", "bare-list"])
def test_a_corrupted_copy_fails(
    tmp_path: Path, bare_list: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["selftest", "--noise-vectors", str(_corrupted_copy(tmp_path, bare_list))]) == 1
    out = capsys.readouterr().out
    assert "FAIL vector 3 (Noise_XX_25519_ChaChaPoly_BLAKE2s)" in out
    assert "FAIL vector 5 (Noise_XX_25519_ChaChaPoly_BLAKE2s)" in out
    assert _last_line(out) == "4 passed, 2 failed"


def test_unsupported_vectors_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = json.loads(SUBSET.read_text(encoding="utf-8"))["vectors"]
    psk = {**vectors[0], "protocol_name": "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s"}
    other = {**vectors[1], "protocol_name": "Noise_XX_25519_AESGCM_SHA256"}
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"vectors": [psk, vectors[0], other]}), encoding="utf-8")
    assert main(["selftest", "--noise-vectors", str(path)]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 of 3 vectors" in out
    assert _last_line(out) == "1 passed, 0 failed"


@pytest.mark.parametrize("content", ["not json", '{"no": "vectors"}', "[1, 2]", None])
def test_an_unreadable_file_is_an_error(
    tmp_path: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vectors.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["selftest", "--noise-vectors", str(path)]) == 2
    assert "cannot read Noise vectors" in capsys.readouterr().err


def test_console_script_runs_the_vectors(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "pigeon.cli", "selftest", "--noise-vectors"]
    good = subprocess.run([*command, str(SUBSET)], capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    assert _last_line(good.stdout) == "6 passed, 0 failed"
    bad_path = _corrupted_copy(tmp_path, bare_list=False)
    bad = subprocess.run([*command, str(bad_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert _last_line(bad.stdout) == "4 passed, 2 failed"
