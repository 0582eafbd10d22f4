"""The Pigeon iPhone app's mesh dialect as a sans-IO room (stdlib only).

Codecs for the app's BLE fragments, mesh packets and envelopes, and a flooding router that
relays the app's packets byte for byte (only the TTL byte changes). Written from the facts in
docs/protocol.md ("The Pigeon app's mesh dialect"), never from the app's code.
"""
