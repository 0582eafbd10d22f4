"""bitchat's GATT service, as far as a byte pipe needs it (docs/protocol.md, "bitchat's BLE
service on the node").

Read from bitchat's sources (iOS `permissionlesstech/bitchat` at `9b84b361`:
`BLEService.swift`, `BLEService+LinkLayerPeripheralRole.swift`, `BLERadioController.swift`,
`BLEOutboundPacketPolicy.swift`, `TransportConfig.swift`). One primary service with one
characteristic that is read, written (with and without response) and notified; phones write
packets without response, each write or notification one whole bitchat packet, and size them by
the link's `maximumWriteValueLength(.withoutResponse)` (ATT MTU - 3) or, as a peripheral, by each
central's `maximumUpdateValueLength`. A packet longer than the link is sent as fragments (type
0x20) of `max(64, limit - 42)` bytes, so a link must carry at least 42 + 64 = 106 bytes.
Phones advertise the service UUID alone (no local name, for privacy) and scan for it.
"""

from __future__ import annotations

from typing import Final

BITCHAT_SERVICE_UUID: Final = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"  # release builds
BITCHAT_CHARACTERISTIC_UUID: Final = "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"

# bitchat's fragment frame overhead (fragment header 13, sender 8, recipient 8, packet header 13
# as `BLEOutboundPacketPolicy.fragmentFrameOverhead` counts them) plus its smallest fragment
# chunk (64): a link that carries less cannot take bitchat's fragments.
BITCHAT_FRAGMENT_OVERHEAD: Final = 13 + 8 + 8 + 13
BITCHAT_MIN_FRAME_LIMIT: Final = BITCHAT_FRAGMENT_OVERHEAD + 64  # 106
# bitchat writes up to the ATT maximum value (512), but BlueZ 5.66 loses writes of 511-514 bytes
# (docs/protocol.md, "Frame size"): the node's links never offer more than 510, and the node asks
# for ATT MTU 513 (`config/bluetooth-main.conf`), so phones size their writes to 510 as well.
BITCHAT_MAX_FRAME_LIMIT: Final = 510
