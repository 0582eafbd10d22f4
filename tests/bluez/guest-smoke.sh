#!/bin/bash
# Inside the VM: two virtual LE controllers under a real bluetoothd, visible through D-Bus.
set -eux
modprobe hci_vhci
mkdir -p /run/dbus
dbus-daemon --system --fork
btvirt -L -l2 &
sleep 1
/usr/libexec/bluetooth/bluetoothd -n -E &
sleep 2
btmgmt --index 0 power on
btmgmt --index 1 power on
dbus-send --system --print-reply --dest=org.bluez / org.freedesktop.DBus.ObjectManager.GetManagedObjects | grep -o "/org/bluez/hci[0-9]*" | sort -u
/opt/venv/bin/python -c "import asyncio, bleak; print(asyncio.run(bleak.BleakScanner.discover(timeout=3, bluez={\"adapter\": \"hci1\"})))"
