"""The courier simulator: couriers that log in, take orders, drive and deliver through the
real HTTP API, as the app would.

Only the accounts touch the ORM (the API has no way to create a staff user or reset a
password); everything else is an HTTP call: staff token, couriers, orders, order events and
batched pings. Device times are the wall clock, so the server's rules (future limit,
plausibility speed, last-location guard) apply to the simulation exactly as to the app.

Modules: `geometry` (where couriers drive), `courier` (one courier's state machine),
`client` (the HTTP calls), `config` (a run's settings and counters), `run` (accounts,
set-up and the loop of a run).
"""
