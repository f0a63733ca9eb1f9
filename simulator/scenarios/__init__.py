"""Scenario files (schema, loader with file:line:column errors), the runner, faults, reports and conformance."""
