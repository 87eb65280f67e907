"""Clients of the services the facade calls, and their resilience.

``scoring`` (MLflow's scoring server: deadlines, retries, the circuit breaker of ``breaker``),
``registry`` (the tracking server: run id → registered version, run params and artifacts),
``batching`` (concurrent single predictions coalesced into one scoring call) and ``metrics`` (the
families that watch these calls). Every failure leaves this package as one of ``facade.errors``.
"""
