"""The node daemon: the composition root that builds and runs everything from config."""
