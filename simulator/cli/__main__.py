"""`python -m simulator.cli`: the same command line as `accessrc-sim`."""

from . import main

main()
