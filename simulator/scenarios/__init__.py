"""Scenario files and their runs, without Flask.

loader (positions, refs, validation) → Scenario and Steps; runner (faults, checks) → results; reports and
conformance read the results. The HTTP edge is simulator/api/scenario_runs.py.
"""
