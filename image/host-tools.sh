#!/usr/bin/env bash
# The host tools of the root-level targets, one list per target: every command their scripts
# run on the host, with the Debian package that provides it. Missing ones are installed with
# apt-get when run as root on Debian or Ubuntu; otherwise the script names the exact packages
# to install and fails. Commands of essential packages (coreutils, grep, ...) are listed too,
# so tests/test_host_tools.py can check that every command the scripts call has its package.
# Usage: image/host-tools.sh TARGET...   TARGET: image | image-test | ansible | bluez
#   image      image/build.sh, build-rootfs.sh, wheels.sh (mmdebstrap through qemu-user
#              binfmt, genimage with its mkdosfs/mtools/e2fsprogs, xz) and the Ansible venv
#   image-test image/test.sh, wear.sh, pulled-plugs.sh (qemu-system-aarch64, mtools, curl, bc)
#   ansible    ansible/test-roles.sh (a venv for ansible, ansible-lint, yamllint; chroot)
#   bluez      tests/bluez/build-rootfs.sh and run-vm.sh (mmdebstrap, mkfs.ext4, QEMU x86)
# A tool is a command on PATH, an absolute path (a file that must exist), or py:MODULE (a
# module python3 must import).
set -euo pipefail

common=(
    bash:bash cat:coreutils cp:coreutils cut:coreutils date:coreutils dirname:coreutils
    du:coreutils head:coreutils id:coreutils install:coreutils ls:coreutils mkdir:coreutils mktemp:coreutils
    mv:coreutils rm:coreutils seq:coreutils sha256sum:coreutils sleep:coreutils stat:coreutils
    tail:coreutils tee:coreutils timeout:coreutils tr:coreutils truncate:coreutils
    grep:grep sed:sed tar:tar
    python3:python3 py:ensurepip:python3-venv
)
image=(
    "${common[@]}"
    mmdebstrap:mmdebstrap arch-test:arch-test
    /usr/share/keyrings/debian-archive-keyring.gpg:debian-archive-keyring
    update-binfmts:binfmt-support qemu-aarch64-static:qemu-user-static mount:mount
    chroot:coreutils
    genimage:genimage mkdosfs:dosfstools mcopy:mtools mmd:mtools
    mke2fs:e2fsprogs tune2fs:e2fsprogs e2fsck:e2fsprogs
    xz:xz-utils
)
image_test=(
    mount:mount umount:mount rmdir:coreutils
    "${common[@]}"
    qemu-system-aarch64:qemu-system-arm mdir:mtools mcopy:mtools curl:curl bc:bc
)
ansible=(
    "${common[@]}"
    chroot:coreutils
)
bluez=(
    "${common[@]}"
    mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs qemu-system-x86_64:qemu-system-x86
    gcc:gcc /usr/include/stdio.h:libc6-dev patch:patch xz:xz-utils
)

present() {
    case $1 in
        /*) [[ -e $1 ]] ;;
        py:*) python3 -c "import ${1#py:}" 2>/dev/null ;;
        *) command -v "$1" >/dev/null ;;
    esac
}

# `list TARGET`: the target's tool:package pairs, one a line (the test reads them).
if [[ ${1:-} == list ]]; then
    declare -n wanted="${2//-/_}"
    printf '%s\n' "${wanted[@]}"
    exit 0
fi
(($#)) || { echo "usage: $0 image|image-test|ansible|bluez ..." >&2; exit 2; }

missing_tools=()
missing_packages=()
for target in "$@"; do
    [[ $target =~ ^(image|image-test|ansible|bluez)$ ]] || { echo "unknown target: $target" >&2; exit 2; }
    declare -n wanted="${target//-/_}"
    for pair in "${wanted[@]}"; do
        tool=${pair%:*} package=${pair##*:}
        present "$tool" && continue
        missing_tools+=("$tool")
        [[ " ${missing_packages[*]} " == *" $package "* ]] || missing_packages+=("$package")
    done
    unset -n wanted
done
((${#missing_packages[@]})) || exit 0

if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing host tools: ${missing_tools[*]}" >&2
    echo "install them as root: apt-get install --no-install-recommends ${missing_packages[*]}" >&2
    exit 1
fi
echo "== installing host tools: ${missing_packages[*]}"
apt-get -o DPkg::Lock::Timeout=300 update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing_packages[@]}"
for tool in "${missing_tools[@]}"; do
    present "$tool" || { echo "still missing after the install: $tool" >&2; exit 1; }
done
