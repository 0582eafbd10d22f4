#!/bin/sh
# Runs at every boot of the pulled-plug test (make image-pulled-plugs) inside the flashed image:
# says how the root file system came up, waits for the node to report READY by itself, prints
# the ledger of stored texts and envelopes (bench/image_plug_guest.py check), then writes
# traffic until the host kills the machine; with pigeon.final on the command line it powers off.
set -u
say() { echo "PLUG: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
say "BOOT uptime=$(cut -d' ' -f1 /proc/uptime)"
# fsck in the initramfs (fsck.repair=yes) and the journal replay at mount, as the kernel told it.
[ -f /run/initramfs/fsck.log ] && sed 's/^/PLUG: FSCK /' /run/initramfs/fsck.log > /dev/console
dmesg | grep -E 'EXT4-fs|recovery' | sed 's/^/PLUG: KERNEL /' > /dev/console
conf=/etc/pigeon/node.toml
if ! grep -q '^kind = "sim"' "$conf"; then  # first boot: the node on its stand-ins from now on
    sed -i -e '/^\[radio\]/,/^\[/ s/^kind = .*/kind = "sim"/' \
           -e '/^\[display\]/,/^\[/ s/^kind = .*/kind = "png"/' \
           -e '/^\[buttons\]/,/^\[/ s/^kind = .*/kind = "virtual"/' "$conf"
    sync
    systemctl restart --no-block pigeon-node.service
fi
node_active
say "NODE $(systemctl show -p ActiveState --value pigeon-node.service) uptime=$(cut -d' ' -f1 /proc/uptime)"
say "FAILED_UNITS [$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')]"
py=/opt/pigeon/venv/bin/python
$py /boot/firmware/image_plug_guest.py check 2> /tmp/check.err || tail -3 /tmp/check.err > /dev/console
if grep -qw pigeon.final /proc/cmdline; then
    say "FINAL"
    exit 0
fi
say "TRAFFIC"
exec $py /boot/firmware/image_plug_guest.py traffic "$(cut -c1-8 /proc/sys/kernel/random/boot_id)"
