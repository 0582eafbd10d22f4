#!/usr/bin/env bash
# make image-first-boot-plugs: power cuts during the image's first boots, under QEMU virt. One
# fresh card is booted again and again and QEMU killed (SIGKILL) at a random moment of each boot,
# first during the first boot's work (growing the root, SSH host keys, the node creating its
# identity, vault and spool), then wherever it lands; the card is attached cache=none, so what
# the guest had not written out is gone, as on a Pi whose plug is pulled. A last boot must come
# up by itself: the node READY, its self-test passing, no failed unit. Each boot's console says
# how far it got (systemd's lines for pigeon-firstboot and pigeon-node). Records
# bench/results/image.json (`first_boot_plugs`).
# Usage: image/first-boot-plugs.sh [IMAGE]   PIGEON_FIRSTBOOT_ROUNDS (default 8),
#   PIGEON_FIRSTBOOT_MAX_S (kill within this many seconds of power-on, wall clock; default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
rounds=${PIGEON_FIRSTBOOT_ROUNDS:-8}
max_s=${PIGEON_FIRSTBOOT_MAX_S:-100}
logs="$repo/build/first-boot-plugs"
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "the first-boot power-cut test runs as root"; exit 1; }
work=$(mktemp -d -p "${PIGEON_PLUG_TMP:-/var/tmp}") && trap 'kill -9 $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
rm -rf "$logs" && mkdir -p "$logs"
source "$here/emulation-card.sh"
emulation_card "$image" "$work" +512M
# The node on its stand-ins from the very first boot (the emulated board has no radio, panel
# or buttons): set on the card before it is ever booted, so no guest step races the kills.
sed_card_root "$work/disk.img" /etc/pigeon/node.toml -f "$here/stand-ins.sed"
mcopy -i "$boot" "$here/guest-first-boot.sh" ::pigeon-first-boot.sh
run='systemd.default_timeout_start_sec=900 systemd.wants=multi-user.target systemd.run="/bin/sh /boot/firmware/pigeon-first-boot.sh"'
start=$(date +%s)
kills=()
for round in $(seq 1 $((rounds + 1))); do
    final=
    [[ $round -gt $rounds ]] && final="pigeon.final systemd.run_success_action=poweroff"
    log="$logs/boot-$(printf %02d "$round").log"
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
        -append "root=LABEL=pigeonroot rw fsck.repair=yes console=ttyAMA0 panic=-1 $run $final" \
        -drive "file=$work/disk.img,format=raw,if=virtio,cache=none" -nic none \
        > "$log" 2>&1 < /dev/null &
    qemu=$!
    if [[ -n $final ]]; then
        timeout 2400 tail --pid="$qemu" -f /dev/null || kill -9 "$qemu" 2>/dev/null || true
        wait "$qemu" 2>/dev/null || true
        break
    fi
    delay=$(($RANDOM % ($max_s * 10 - 30) + 30))  # tenths of a second: 3 s to max_s
    sleep "$(($delay / 10)).$(($delay % 10))"
    kill -9 "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    kills+=("$(($delay / 10)).$(($delay % 10))")
    echo "boot $round: killed $(($delay / 10)).$(($delay % 10)) s after power-on ($(($(date +%s) - start)) s so far)"
done
python3 "$repo/bench/image_first_boot_check.py" "$logs" "$(($(date +%s) - start))" "${kills[@]}"
