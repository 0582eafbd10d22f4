"""The mesh core: packet and fragment codecs, dedup, spool policy, routing (sans-IO)."""
