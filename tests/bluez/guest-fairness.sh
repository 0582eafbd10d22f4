#!/bin/bash
# Inside the VM: only the fairness step of guest-ble.sh (a hub on hci3 linked to nodes on hci0-2;
# texts beside two bulk transfers), and the bluetoothd check, to iterate on it.
export PIGEON_VM_ONLY=fairness
exec /bin/bash /src/tests/bluez/guest-ble.sh
