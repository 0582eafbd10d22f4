"""End-to-end cryptography: identity, cards, safety numbers, Noise XX, Double Ratchet (sans-IO)."""
