#!/bin/bash
# Inside the VM: only the link-slot steps of guest-ble.sh (and the bluetoothd check), to
# iterate on them without the whole tier. The tier itself always runs guest-ble.sh.
export PIGEON_VM_ONLY=slots
exec /bin/bash /src/tests/bluez/guest-ble.sh
