#!/bin/bash
# Inside the VM: only the rig's L2CAP capacity step of guest-ble.sh (and the bluetoothd check),
# to iterate on it without the whole tier. The tier itself always runs guest-ble.sh.
export PIGEON_VM_ONLY=capacity
exec /bin/bash /src/tests/bluez/guest-ble.sh
