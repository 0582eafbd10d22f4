"""Nostr (NIP-01 events and relay messages, BIP-340 signatures) as a sans-IO room."""
