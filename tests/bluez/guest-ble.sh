#!/bin/bash
# Inside the VM: four virtual LE controllers under a real bluetoothd, then two Pigeon BLE
# transports (node A on hci0, node B on hci1) driven by tests/bluez/guest_ble.py; then a node
# on hci2 with one link slot, scripted squatting and junk-writing centrals on hci0 and a node
# on hci1 (tests/bluez/guest_slots.py); then a node
# on hci2 between two scripted Pigeon-app phones on hci0 and hci1 (tests/bluez/guest_app.py);
# then a node on hci2 between two bitchat-cli clients on hci0 and hci1
# (tests/bluez/guest_bitchat.py); then a hub on hci3 linked to nodes on hci0-2
# (tests/bluez/guest_fairness.py), last, the same four for the air one link costs (guest_air.py).
# Results land in /out/results.json and /out/ble.json; bluetoothd's log in /out/bluetoothd.log.
set -eux
modprobe hci_vhci
mkdir -p /run/dbus
dbus-daemon --system --fork
: > /out/bluetoothd.log
# The node's own BlueZ settings (the lines the Ansible role puts in main.conf).
cp /src/config/bluetooth-main.conf /etc/bluetooth/main.conf
# and its kernel settings (the role's /etc/sysctl.d/60-pigeon.conf, applied at boot).
sysctl -p /src/config/sysctl-pigeon.conf
# A crash of bluetoothd leaves a core file and its end in the log (a segfault's kernel line is
# below the console's `quiet` level, so dmesg is saved at the end too).
ulimit -c unlimited
echo '/out/core.%e.%p' > /proc/sys/kernel/core_pattern
# bluetoothd as the node's systemd drop-in starts it (config/bluetooth-pigeon.conf), in the
# foreground (-n) since no systemd runs here.
sed -n 's/^ExecStart=\(.\+\)$/\1/p' /src/config/bluetooth-pigeon.conf | tail -n 1 > /run/bluetoothd.cmd
if [[ -x /out/bluetoothd-under-test ]]; then  # run-vm.sh's BLUETOOTHD, e.g. with ASan
    sed -i 's#^[^ ]*bluetoothd#/out/bluetoothd-under-test#' /run/bluetoothd.cmd
    export ASAN_OPTIONS=log_path=/out/asan:halt_on_error=0:detect_leaks=0
fi
cat > /usr/local/bin/pigeon-start-bluetoothd <<'SH'
#!/bin/bash
read -ra cmd < /run/bluetoothd.cmd
rm -f /run/bluetoothd.pid
(
    # Each line stamped with the guest clock, to line up with guest.log.
    "${cmd[@]}" -n > >(while IFS= read -r line; do  # bash builtins only: no fork a line
        printf -v now '%(%T)T' -1; ms=${EPOCHREALTIME#*.}
        printf '%s.%s %s\n' "$now" "${ms:0:3}" "$line"; done >> /out/bluetoothd.log) 2>&1 &
    pid=$!
    echo $pid > /run/bluetoothd.pid
    wait $pid
    echo "== bluetoothd $pid ended with status $? at $(date +%T.%N)" >> /out/bluetoothd.log
) &
until [[ -s /run/bluetoothd.pid ]]; do sleep 0.1; done
SH
chmod +x /usr/local/bin/pigeon-start-bluetoothd
/usr/local/bin/pigeon-start-bluetoothd
# The four virtual controllers (btvirt, with the rig's fixes: build-btvirt.sh), started again
# from scratch when they run already: guest_ble.py does so after a bluetoothd crash, so that the
# steps after it start from controllers in the state the first step found them.
cat > /usr/local/bin/pigeon-start-controllers <<'SH'
#!/bin/bash
all_adapters() {
    local objects
    objects=$(dbus-send --system --print-reply --dest=org.bluez / \
        org.freedesktop.DBus.ObjectManager.GetManagedObjects 2>/dev/null || true)
    grep -q 'object path "/org/bluez/hci0"' <<< "$objects" &&
        grep -q 'object path "/org/bluez/hci1"' <<< "$objects" &&
        grep -q 'object path "/org/bluez/hci2"' <<< "$objects" &&
        grep -q 'object path "/org/bluez/hci3"' <<< "$objects"
}
stop_btvirt() {
    [[ -s /run/btvirt.pid ]] || return 0
    kill "$(cat /run/btvirt.pid)" 2> /dev/null || true
    rm -f /run/btvirt.pid
    for _ in $(seq 20); do compgen -G '/sys/class/bluetooth/hci*' > /dev/null || break; sleep 0.5; done
}
# On a loaded host a virtual controller can miss its HCI reset timeout (dmesg: "Opcode 0x0c03
# failed: -110") and never appear; then start the controllers again.
for attempt in 1 2 3; do
    stop_btvirt
    setsid /usr/local/bin/btvirt -L -l4 < /dev/null &
    echo $! > /run/btvirt.pid
    for _ in $(seq 40); do all_adapters && exit 0; sleep 1; done
    echo "attempt $attempt: the virtual controllers did not all come up; retrying"
    sleep 2
done
exit 1
SH
chmod +x /usr/local/bin/pigeon-start-controllers
/usr/local/bin/pigeon-start-controllers
# What bluetoothd's drop-in runs on a Pi after it starts (config/bluetooth-pigeon.conf).
bash /src/config/pigeon-ble-2m-phy > /out/phy.log 2>&1 || true
export PYTHONPATH=/src/node:/src PYTHONDONTWRITEBYTECODE=1
status=0
/opt/venv/bin/python /src/tests/bluez/guest_ble.py /out || status=$?
dmesg > /out/dmesg.log
exit $status
