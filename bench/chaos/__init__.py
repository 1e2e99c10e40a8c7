"""Fault injection under load (`make chaos`, `make soak`): a courier-like client with known
event ids, faults injected into the running stack, and the stored set checked against the
accepted set over HTTP and SQL only, so it holds for any version of the app's internals."""
