"""Dumb byte pipes between neighbours: the Transport seam, the simulated radio, BLE, relays."""
