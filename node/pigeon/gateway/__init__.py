"""The node as bitchat's Nostr gateway: sans-IO policy between bitchat's mesh and Nostr relays."""
