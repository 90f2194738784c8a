"""``python -m sim``: the same command line as ``hems-twin``."""

from sim.cli import entry

entry()
