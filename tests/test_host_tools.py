"""image/host-tools.sh names a Debian package for every command the root-level targets run.

The scripts are read, not run: a small shell lexer finds each word in command position (after
quotes, comments and arrays are set aside) and every one that is not a shell builtin, a keyword
or one of the script's own functions must be in the target's list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOST_TOOLS = REPO / "image" / "host-tools.sh"
SCRIPTS = {
    "image": ["image/build.sh", "image/build-rootfs.sh", "image/wheels.sh"],
    "image-test": [
        "image/test.sh",
        "image/wear.sh",
        "image/pulled-plugs.sh",
        "image/read-only.sh",
        "image/first-boot-plugs.sh",
        "image/emulation-card.sh",  # sourced by the others: its functions are theirs
    ],
    "ansible": ["ansible/test-roles.sh"],
    "bluez": ["tests/bluez/build-rootfs.sh", "tests/bluez/run-vm.sh"],
}
BUILTINS = frozenset(
    {"cd", "echo", "printf", "exit", "set", "trap", "pwd", "read", "kill", "wait", "local"}
    | {"return", "shift", "true", "false", "test", "[", "unset", "declare", "source", "."}
    | {"exec", "eval", "type", "command", "export", "readonly", "break", "continue"}
)
SKIPPED_SEGMENTS = frozenset({"for", "case", "[[", "select", "in"})
SEPARATORS = re.compile(
    r"\|\||&&|;;|\$\(|[|;&(){}\n]|\b(?:if|then|else|elif|fi|while|until|do|done|esac)\b"
)
COMMAND_NAME = re.compile(r"^(?:/[\w./-]+|[A-Za-z][\w.+-]*)$")


def _mask(text: str) -> str:
    """`text` with comments dropped and each quoted string replaced by @, keeping the words of
    command substitutions (also inside double quotes) in place."""
    out: list[str] = []
    stack = ["N"]  # N: plain, S: single quotes, D: double quotes, C: inside $( )
    i = 0
    while i < len(text):
        char, state = text[i], stack[-1]
        if state == "S":
            if char == "'":
                stack.pop()
        elif state == "D":
            if char == "\\":
                i += 1
            elif char == '"':
                stack.pop()
            elif text.startswith("$(", i):
                stack.append("C")
                out.append(" $( ")
                i += 1
        elif char == "\\":
            out.append(text[i : i + 2])
            i += 1
        elif char in "'\"":
            stack.append("S" if char == "'" else "D")
            if len(stack) == 2 or stack[-2] != "D":
                out.append("@")
        elif text.startswith("$(", i):
            stack.append("C")
            out.append("$(")
            i += 1
        elif char == "(" and state == "C":
            stack.append("C")
            out.append(char)
        elif char == ")" and state == "C":
            stack.pop()
            out.append(char)
        elif char == "#" and (i == 0 or text[i - 1] in " \t\n;"):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def commands_of(script: str) -> set[str]:
    """The commands `script` runs on the host, as far as a lexer can tell."""
    text = _mask(script.replace("\\\n", " "))
    text = re.sub(r"\b\w+=\([^)]*\)", " ", text)  # arrays hold words, not commands
    text = re.sub(r"\$\(\([^()]*\)\)", " ", text)  # arithmetic holds names, not commands
    functions = set(re.findall(r"(?m)^\s*([\w-]+)\(\)", text))
    found: set[str] = set()
    for segment in SEPARATORS.split(text):
        words = segment.split()
        while words and re.match(r"^\w+=", words[0]):
            words.pop(0)
        if not words or words[0] in SKIPPED_SEGMENTS or words[0] in functions:
            continue
        name, rest = words[0], words[1:]
        if name == "command" and rest[:1] == ["-v"]:
            name, rest = rest[1], []
        if name == "timeout":
            found.add(name)
            name, rest = next(w for w in rest if w != "@" and not w.startswith("-")), []
        if COMMAND_NAME.match(name) and name not in BUILTINS:
            found.add(name)
    return found


def listed(target: str) -> set[str]:
    """The tools `image/host-tools.sh` checks for `target`."""
    result = subprocess.run(
        ["bash", str(HOST_TOOLS), "list", target], capture_output=True, text=True, check=True
    )
    return {line.rsplit(":", 1)[0] for line in result.stdout.split()}


def test_the_lexer_finds_commands_and_only_commands() -> None:
    script = (
        "set -euo pipefail\n"
        'here=$(cd "$(dirname "$0")" && pwd)  # where \'we\' are\n'
        'step() { printf "%s" "$*"; }\n'
        "packages=(\n    raspi-firmware bluez\n)\n"
        'echo "the (chroot, and more) words"\n'
        "[[ -e x ]] || update-binfmts --enable qemu-aarch64\n"
        'n=$(( $(du -sm "$root" | cut -f1) * 13 ))\n'
        "n=$((n + 1))\n"
        'while kill -0 "$qemu"; do sleep 2; done\n'
        "trap 'rm -rf \"$work\"' EXIT\n"
        "mmdebstrap --hook='chroot \"$1\" dpkg-divert --add' \\\n    bookworm out.tar\n"
        'timeout "${T:-600}" qemu-system-x86_64 -m 1024\n'
        'command -v genimage >/dev/null || "$venv/bin/pip" install ansible\n'
        "step done\n"
    )
    assert commands_of(script) == {
        "dirname",
        "update-binfmts",
        "du",
        "cut",
        "sleep",
        "mmdebstrap",
        "timeout",
        "qemu-system-x86_64",
        "genimage",
    }


@pytest.mark.parametrize("target", sorted(SCRIPTS))
def test_every_command_a_target_runs_has_its_package(target: str) -> None:
    # One text per target, so a function defined in a sourced file counts as the caller's own.
    used = commands_of("\n".join((REPO / script).read_text() for script in SCRIPTS[target]))
    assert used, target
    assert used - listed(target) == set()


def test_the_image_list_covers_what_mmdebstrap_and_genimage_call() -> None:
    # Not visible in the scripts: mmdebstrap needs arch-test and a registered qemu-aarch64 for
    # a foreign architecture; genimage runs mkdosfs and mtools (vfat) and e2fsprogs (ext4).
    assert {"arch-test", "qemu-aarch64-static", "mkdosfs", "mcopy", "mmd", "mke2fs"} <= listed(
        "image"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop it"
)
def test_without_root_it_names_the_packages_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with bash and the tools the check itself uses, no more
    bin_dir.mkdir()
    for tool in ("bash", "python3"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]
    result = subprocess.run(
        [str(shutil.which("setpriv")), *nobody, "bash", str(HOST_TOOLS), "image-test"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(bin_dir)},
    )
    assert result.returncode == 1
    assert "missing host tools: " in result.stderr
    assert "qemu-system-aarch64" in result.stderr
    install = result.stderr.split("install them as root: ")[1].split()
    assert install[:3] == ["apt-get", "install", "--no-install-recommends"]
    assert {"qemu-system-arm", "mtools", "curl", "bc", "coreutils"} <= set(install[3:])


def test_an_unknown_target_is_refused() -> None:
    result = subprocess.run(
        ["bash", str(HOST_TOOLS), "imgae"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr.strip()) == (2, "unknown target: imgae")
