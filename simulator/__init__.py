"""accessrc-sim: a mock webhook sender for AccessRC, Accredit and ReachFive receivers."""

__version__ = "0.1.0"
