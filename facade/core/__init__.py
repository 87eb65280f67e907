"""Cross-cutting pieces of the facade: settings, errors, metrics and middleware."""
