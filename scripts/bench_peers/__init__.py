"""The serving peers ``make bench`` measures beside our stack, one server each, same skops pipeline.

``bento_service`` and ``mlserver_runtime`` run inside virtual environments the benchmark makes for
them (``scripts.bench_peers.envs``); ``one_hop`` runs in the project's own. Importing this package
imports nothing, so a peer's environment needs only its server, scikit-learn and skops.
"""
