#!/usr/bin/env bash
# make image-test: boot the built image under qemu-system-aarch64 (software emulation), wait for
# pigeon-node.service to report READY, check `pigeon selftest`, fetch the web page through a
# forwarded loopback port, power off, print the figures and record them in
# bench/results/image.json. The image itself is not modified (a sparse copy is booted).
# Usage: image/test.sh [virt|raspi3b] [IMAGE]
#   virt     the generic machine, virtio disk, the image's kernel and initrd; the node on its
#            stand-ins (no Bluetooth, panel or buttons there)
#   raspi3b  QEMU's Raspberry Pi 3 Model B: the image's own Pi 3 device tree and cmdline.txt from
#            its FAT partition, the card as the board's SD card (the real SD host driver and
#            root= line), the node on the image's own configuration (BLE, SSD1306, GPIO)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/pyproject.toml" | head -1)
machine=${1:-virt}
image=${2:-$repo/build/pigeon-node-$version-arm64.img}
port=${PIGEON_TEST_PORT:-18443}
[[ $machine == virt || $machine == raspi3b ]] || { echo "unknown machine: $machine" >&2; exit 2; }
[[ -f "$image" ]] || { echo "no image at $image: run make image first"; exit 1; }
work=$(mktemp -d) && trap 'kill $qemu 2>/dev/null || true; rm -rf "$work"' EXIT
qemu=
card=+512M  # a larger "card": first boot must grow the root into it
if [[ $machine == raspi3b ]]; then
    # QEMU's SD card must be a power of two in size: the next one up with 512 MiB to spare, so
    # the grown root is measurably larger (a 2 GiB card grew it by less than ext4's overhead).
    size=$(stat -c %s "$image") card=$((1024 * 1024 * 1024))
    while [[ $card -le $(($size + 512 * 1024 * 1024)) ]]; do card=$(($card * 2)); done
fi
source "$here/emulation-card.sh"
emulation_card "$image" "$work" "$card"
mcopy -i "$boot" "$here/guest-test.sh" ::pigeon-image-test.sh
# The check runs once from the kernel command line and powers the machine off.
# Emulation under load can take minutes to find the boot partition; a Pi takes a second.
run='systemd.default_timeout_start_sec=900 systemd.wants=multi-user.target systemd.run="/bin/sh /boot/firmware/pigeon-image-test.sh" systemd.run_success_action=poweroff systemd.run_failure_action=poweroff panic=-1'
# restrict=on: the guest reaches nothing but the forwarded port.
net="user,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8443"
if [[ $machine == virt ]]; then
    args=(-M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img"
        -append "root=LABEL=pigeonroot rw console=ttyAMA0 $run"
        -drive "file=$work/disk.img,format=raw,if=virtio" -nic "$net")
else
    mcopy -i "$boot" ::bcm2837-rpi-3-b.dtb "$work/board.dtb"
    mcopy -i "$boot" ::cmdline.txt "$work/cmdline.txt"
    # The image's own command line, then the check; the console named last is /dev/console, so
    # the serial port (the mini UART, QEMU's second serial) carries the check's lines.
    cmdline="$(tr -d '\n' < "$work/cmdline.txt") console=ttyS1,115200 pigeon.own_hardware $run"
    args=(-M raspi3b -smp 4 -m 1024 -display none -monitor none -serial null -serial stdio
        -kernel "$work/vmlinuz" -initrd "$work/initrd.img" -dtb "$work/board.dtb"
        -append "$cmdline" -drive "file=$work/disk.img,format=raw,if=sd" -nic none)
    # No network: the board's Ethernet is not in the model, and a usb-net on its emulated dwc2
    # USB host made the guest crawl (and hang once) on this 2-core host; the page is checked
    # under virt.
    page="not checked (no network on raspi3b)"
fi
start=$(date +%s.%N)
page=${page:-not fetched}
qemu-system-aarch64 "${args[@]}" -no-reboot > "$work/console.log" 2>&1 < /dev/null &
qemu=$!
while kill -0 "$qemu" 2>/dev/null; do
    if [[ -z ${ready_wall:-} ]] && grep -q "PIGEON-IMAGE-TEST: READY" "$work/console.log"; then
        ready_wall=$(echo "$(date +%s.%N) - $start" | bc)
        [[ "$page" == "not fetched" ]] \
            && page=$(curl -sk -o /dev/null -w '%{http_code} in %{time_total}s' "https://127.0.0.1:$port/" || echo failed)
    fi
    sleep 2
done
mkdir -p "$repo/build" && cp "$work/console.log" "$repo/build/image-test-$machine-console.log"
grep -a "PIGEON-IMAGE-TEST" "$work/console.log" | tr -d '\r'
line() { grep -a "PIGEON-IMAGE-TEST: $1" "$work/console.log" | tr -d '\r' | head -1; }
service=$(line SERVICE)
ready_us=$(sed -n 's/.*ready_us=\([0-9]*\).*/\1/p' <<< "$service")
start_us=$(sed -n 's/.*start_us=\([0-9]*\).*/\1/p' <<< "$service")
ready_s=$(echo "scale=1; ${ready_us:-0} / 1000000" | bc)
service_s=$(echo "scale=1; (${ready_us:-0} - ${start_us:-0}) / 1000000" | bc)
echo
echo "machine:          $machine"
echo "image:            $(du -h --apparent-size "$image" | cut -f1) raw, $(du -h "$image.xz" 2>/dev/null | cut -f1) xz"
echo "power-on to READY (guest clock): $ready_s s"
echo "service start to READY:          $service_s s"
echo "wall clock to READY (emulated):  ${ready_wall:-never} s"
echo "web page through forwarded port: $page"
host=$(line HOSTNAME | sed 's/.*HOSTNAME //')
node=$(line NODE | sed 's/.*NODE //')
failed=$(line FAILED_UNITS | sed 's/.*FAILED_UNITS //')
root_mb=$(line ROOT_MB | sed 's/.*ROOT_MB //')
devices=$(line DEVICES | sed 's/.*DEVICES //')
status=$(line STATUS | sed 's/.*STATUS //')
image_root_mb=$(( ($(stat -c %s "$image") - 260 * 1024 * 1024) / 1024 / 1024 ))
echo "root file system after first boot: ${root_mb:-?} MB (root partition in the image: ${image_root_mb} MB)"
echo "host name / node name:           $host / $node"
echo "devices the board offers:        $devices"
echo "failed units:                    $failed"
ok=false
grep -q "state=active" <<< "$service" && grep -aq "SELFTEST ok" "$work/console.log" \
    && [[ "$page" == 200* || "$page" == 30* || $machine == raspi3b ]] \
    && [[ -n "$host" && "$host" == "$node" ]] \
    && [[ "$failed" == "[]" ]] && [[ ${root_mb:-0} -gt $image_root_mb ]] && ok=true
python3 "$repo/bench/image_record.py" "boot_$machine" "power_on_to_ready_s=$ready_s" \
    "service_start_to_ready_s=$service_s" "wall_to_ready_s=${ready_wall:-null}" \
    "page=$page" "devices=$devices" "status=$status" "failed_units=$failed" "passed=$ok" \
    "measured=$(date -u +%FT%TZ)" "image_built=$(date -u -r "$image" +%FT%TZ)"
$ok
