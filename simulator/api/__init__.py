"""The simulator's HTTP API: the platforms' own subscription APIs, the delivery log and the simulator's routes.

One module per resource, each with its blueprint (registered in simulator.app): health, events, subscriptions,
send, actions, stream, jobs, scenario_runs, openapi; the platforms' stand-ins accessrc and accredit. Shared by
them and the dashboard: inputs (request fields, parsed and checked), access (admin key, the running Services),
errors (ApiError and the envelopes), session (dashboard log-in).
"""
