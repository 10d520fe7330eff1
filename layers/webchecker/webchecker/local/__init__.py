"""The local edge: the whole pipeline on loopback (services, Lambda emulation, demo, live view)."""
