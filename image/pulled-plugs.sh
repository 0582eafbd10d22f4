#!/usr/bin/env bash
# make image-pulled-plugs: power cuts of the whole image under QEMU virt. The card is attached
# with cache=none (O_DIRECT on the host): what the guest had not written out when QEMU dies is
# gone, as on a Pi whose plug is pulled. Each round boots the same card, waits for the node's
# READY and the guest's traffic through the node's own interfaces (image/guest-plug.sh: texts
# through the owner's web API, envelopes for neighbours deposited at the neighbourhood mailbox,
# `pigeon relay`; each printed on the serial console once its interface acknowledged it), kills
# QEMU with SIGKILL at a random moment after the first acknowledgement, and boots again; a last
# boot only checks. bench/image_plug_ledger.py then checks every round: file system up without
# the owner, node READY by itself, integrity checks ok, every acknowledged text and envelope
# there exactly once and whole. Records bench/results/image.json.
# Usage: image/pulled-plugs.sh [IMAGE]   PIGEON_PLUG_ROUNDS (default 20),
#   PIGEON_PLUG_MAX_S (kill within this many seconds of the first acknowledgement, default 20),
#   PIGEON_PLUG_UNTIL (a Unix time: no round starts after it; the last boot checks the card)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
image=${1:-$repo/build/pigeon-node-$version-arm64.img}
rounds=${PIGEON_PLUG_ROUNDS:-20}
max_s=${PIGEON_PLUG_MAX_S:-20}
logs="$repo/build/pulled-plugs"
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
[[ $EUID -eq 0 ]] || { echo "the pulled-plug test runs as root"; exit 1; }
work=$(mktemp -d -p "${PIGEON_PLUG_TMP:-/var/tmp}") && trap 'kill -9 $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
rm -rf "$logs" && mkdir -p "$logs"
source "$here/emulation-card.sh"
emulation_card "$image" "$work" +512M
mcopy -i "$boot" "$here/guest-plug.sh" ::pigeon-plug.sh
mcopy -i "$boot" "$repo/bench/image_plug_guest.py" ::image_plug_guest.py
# Emulation under load can take minutes to find the boot partition; a Pi takes a second.
run='systemd.default_timeout_start_sec=900 systemd.wants=multi-user.target systemd.run="/bin/sh /boot/firmware/pigeon-plug.sh"'
start=$(date +%s)
round=0
while [[ $round -le $rounds ]]; do
    round=$(($round + 1))
    final=
    if [[ -n ${PIGEON_PLUG_UNTIL:-} && $(date +%s) -ge $PIGEON_PLUG_UNTIL && $round -gt 1 ]]; then
        rounds=$(($round - 1))  # out of time: this boot is the last, and only checks
    fi
    [[ $round -gt $rounds ]] && final="pigeon.final systemd.run_success_action=poweroff"
    log="$logs/round-$(printf %02d "$round").log"
    : > "$log"  # there before the first look at it
    qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
        -append "root=LABEL=pigeonroot rw fsck.repair=yes console=ttyAMA0 panic=-1 $run $final" \
        -drive "file=$work/disk.img,format=raw,if=virtio,cache=none" -nic none \
        > "$log" 2>&1 < /dev/null &
    qemu=$!
    waited=0
    done_when="PLUG: ACK "  # the traffic runs: what it acknowledged from now on is at stake
    [[ -n $final ]] && done_when="PLUG: FINAL"
    until grep -aqE "$done_when|PLUG: TRAFFIC ENDED" "$log" || ! kill -0 "$qemu" 2>/dev/null || [[ $waited -gt 1800 ]]; do
        sleep 2 && waited=$(($waited + 2))
    done
    if [[ -n $final ]]; then
        wait "$qemu" || true
        break
    fi
    delay=$(($RANDOM % ($max_s * 10) + 5))  # tenths of a second: 0.5 s to max_s
    sleep "$(($delay / 10)).$(($delay % 10))"
    kill -9 "$qemu" 2>/dev/null || true
    wait "$qemu" 2>/dev/null || true
    echo "round $round: killed $(($delay / 10)).$(($delay % 10)) s after the first acknowledgement ($(($(date +%s) - start)) s so far)"
done
echo "$rounds rounds in $(($(date +%s) - start)) s"
python3 "$repo/bench/image_plug_ledger.py" "$logs" "$(($(date +%s) - start))"
