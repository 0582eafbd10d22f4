#!/usr/bin/env bash
# Build the flashable Pigeon Node image for Raspberry Pi Zero 2 W, 3B+ and 4 (arm64) from
# Debian bookworm packages and PyPI wheels only. Needs root. Stages, each shown as it runs:
#   1. wheels: the project's wheel + aarch64 wheels of its dependencies (nothing compiles)
#   2. root filesystem: mmdebstrap through qemu-user (cached in image/cache/)
#   3. the Ansible role pigeon_node applied through the chroot connection (the same role that
#      provisions a running Pi)
#   4. partitions: FAT boot + ext4 root assembled by genimage, without loop devices
#   5. build/pigeon-node-VERSION-arm64.img, .img.xz, .sha256 and image/imager.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
cache="$here/cache"
build="$repo/build"
wheels="$build/wheels/aarch64"
root="$build/image-root"
name="pigeon-node-$version-arm64"
ansible_venv="$cache/ansible-venv"
start=$(date +%s)
step() { printf '\n== [%3ds] %s\n' $(($(date +%s) - start)) "$*"; }

[[ $EUID -eq 0 ]] || { echo "make image needs root (chroot, file ownership)"; exit 1; }
mkdir -p "$cache" "$build"

step "1/5 wheels for aarch64 / CPython 3.11"
bash "$here/wheels.sh" "$wheels"

step "2/5 root filesystem (cached after the first build)"
tarball=$(bash "$here/build-rootfs.sh" "$cache" | tail -1)
rm -rf "$root" && mkdir -p "$root"
tar -C "$root" -xpf "$tarball"
chroot "$root" apt-get update -qq  # fresh package lists for the role's apt tasks

step "3/5 Ansible role pigeon_node in the chroot (twice: the second run must change nothing)"
if [[ ! -x "$ansible_venv/bin/ansible-playbook" ]]; then
    python3 -m venv "$ansible_venv"
    "$ansible_venv/bin/pip" install --quiet ansible
fi
run_role() {
    ANSIBLE_CONFIG="$repo/ansible/ansible.cfg" "$ansible_venv/bin/ansible-playbook" \
        -i "$root," -c community.general.chroot "$here/image.yml" \
        -e "pigeon_node_wheelhouse=$wheels" -e "pigeon_node_version=$version" "$@"
}
run_role | tee "$build/ansible-first.log" | grep -E '^(TASK|PLAY RECAP|.*changed=)' || true
run_role | tee "$build/ansible-second.log" | tail -3
grep -qE 'changed=0 .*failed=0' "$build/ansible-second.log" \
    || { echo "the second Ansible run changed something: the role is not idempotent"; exit 1; }
rm -rf "$root/opt/pigeon/wheels" "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

step "4/5 partitions (genimage)"
root_mb=$(( $(du -sm --exclude=./boot/firmware "$root" | cut -f1) * 13 / 10 + 300 ))
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
sed -e "s/@ROOT_MB@/$root_mb/" -e "s/@NAME@/$name/" "$here/genimage.cfg.in" > "$tmp/genimage.cfg"
genimage --config "$tmp/genimage.cfg" --rootpath "$root" --tmppath "$tmp/work" \
    --inputpath "$tmp" --outputpath "$build"

step "5/5 compress, checksum, Raspberry Pi Imager entry"
xz -T0 -6 -k -f "$build/$name.img"
(cd "$build" && sha256sum "$name.img" "$name.img.xz" > "$name.sha256")
python3 "$here/imager_json.py" "$build/$name.img" "$build/$name.img.xz" "$version" > "$here/imager.json"
step "done"
ls -l "$build/$name".* | sed 's/^/   /'
