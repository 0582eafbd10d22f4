"""bitchat's BLE mesh as a sans-IO room: parse enough to route, forward the received bytes with
only the TTL changed, bitchat's relay rules, and the node's own bitchat identity and announces.
Facts from bitchat's sources are summarised in docs/protocol.md ("bitchat")."""
