"""Decision records: every decision the API returns, written first to a SQL database, hash-chained.

``store.DecisionStore`` is the store beside ``PredictionService`` (which records each decision
before it is returned); ``record`` says what a record holds, ``chain`` how its hash is computed,
``tables`` and ``migrations/`` the schema, ``migrate`` how it is brought up to date, and
``python -m facade.records`` the operator's commands (migrate, purge, verify).
"""
