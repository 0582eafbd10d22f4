#!/usr/bin/env bash
# make image-read-only: a card that turns read-only, on the whole image under QEMU virt. Three
# boots of one card (image/guest-read-only.sh runs in each, then powers off):
# 1. writable: texts stored through the owner's API, then the card turns read-only under the
#    running node (the kernel's emergency remount, as ext4 does after write errors);
# 2. the card attached read-only (readonly=on: QEMU refuses every write), as a card that locked
#    itself: the node must come up on it;
# 3. writable again.
# bench/image_read_only_check.py then judges the console logs (the node says read-only on its
# page's status, keeps running, refuses new texts with a clear error, loses and doubles none of
# the stored ones; comes back clean) and records bench/results/image.json.
# Usage: image/read-only.sh [IMAGE]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
logs="$repo/build/read-only"
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "the read-only card test runs as root"; exit 1; }
work=$(mktemp -d -p "${PIGEON_PLUG_TMP:-/var/tmp}") && trap 'kill -9 $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
rm -rf "$logs" && mkdir -p "$logs"
source "$here/emulation-card.sh"
emulation_card "$image" "$work" +512M
mcopy -i "$boot" "$here/guest-read-only.sh" ::pigeon-read-only.sh
mcopy -i "$boot" "$repo/bench/image_plug_guest.py" ::image_plug_guest.py
mcopy -i "$boot" "$repo/bench/image_card_guest.py" ::image_card_guest.py
start=$(date +%s)
for phase in 1 2 3; do
    readonly_drive=
    [[ $phase == 2 ]] && readonly_drive=",readonly=on"
    run="systemd.default_timeout_start_sec=900 systemd.wants=multi-user.target systemd.run=\"/bin/sh /boot/firmware/pigeon-read-only.sh\" systemd.run_success_action=poweroff systemd.run_failure_action=poweroff pigeon.ro_phase=$phase"
    timeout 3600 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
        -append "root=LABEL=pigeonroot rw fsck.repair=yes console=ttyAMA0 panic=-1 $run" \
        -drive "file=$work/disk.img,format=raw,if=virtio,cache=none$readonly_drive" -nic none \
        > "$logs/boot-$phase.log" 2>&1 < /dev/null &
    qemu=$!
    wait "$qemu" || true
    echo "boot $phase done ($(($(date +%s) - start)) s so far)"
done
python3 "$repo/bench/image_read_only_check.py" "$logs" "$(($(date +%s) - start))"
