#!/bin/sh
# Runs once inside the flashed image booted under QEMU (make image-test), then powers off.
# QEMU's virt machine has no Bluetooth, I2C panel or GPIO: the node switches to its stand-ins.
# Under raspi3b (pigeon.own_hardware on the kernel command line) the node keeps the image's own
# configuration (BLE, SSD1306, GPIO buttons) and must come up without what the model lacks.
set -u
say() { echo "PIGEON-IMAGE-TEST: $*" > /dev/console; }
. /boot/firmware/guest-emulation.sh
say "BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
if ! grep -qw pigeon.own_hardware /proc/cmdline; then
    sed -i -f /boot/firmware/stand-ins.sed /etc/pigeon/node.toml
    systemctl restart --no-block pigeon-node.service
fi
node_active
state=$(systemctl show -p ActiveState --value pigeon-node.service)
start_us=$(systemctl show -p ExecMainStartTimestampMonotonic --value pigeon-node.service)
ready_us=$(systemctl show -p ActiveEnterTimestampMonotonic --value pigeon-node.service)
say "SERVICE state=$state start_us=$start_us ready_us=$ready_us"
say "STATUS $(systemctl show -p StatusText --value pigeon-node.service)"
# What the board offers the node: the model's devices are named here, not assumed.
has() { if [ -e "$1" ]; then echo "$2=yes"; else echo "$2=no"; fi; }
say "DEVICES $(has /sys/class/bluetooth/hci0 bluetooth) $(has /sys/class/net/wlan0 wifi)" \
    "$(has /sys/class/net/eth0 ethernet) $(has /dev/i2c-1 i2c1) $(has /dev/gpiochip0 gpio)" \
    "$(has /dev/hwrng hwrng) $(has /dev/dri/card0 gpu) root=$(findmnt -n -o SOURCE /)"
if /opt/pigeon/venv/bin/pigeon selftest > /tmp/selftest.log 2>&1; then
    say "SELFTEST ok $(tail -1 /tmp/selftest.log)"
else
    say "SELFTEST failed $(tail -1 /tmp/selftest.log)"
fi
say "HOSTNAME $(hostname)"
say "ROOT_MB $(df -m --output=size / | tail -1 | tr -d ' ')"
say "NODE $(journalctl -u pigeon-node.service -o cat | sed -n 's/.*node \(.*\) built.*/\1/p' | tail -1)"
say "FAILED_UNITS [$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')]"
say "READY"
sleep "${PIGEON_TEST_HOLD_S:-45}"  # the host fetches the page through the forwarded port now
journalctl -u pigeon-node.service --no-pager -n 20 > /dev/console 2>&1
dmesg --level=err,warn > /dev/console 2>&1
say "DONE"
