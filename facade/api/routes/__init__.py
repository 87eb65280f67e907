"""Route modules, one per resource: health, predict, model and metrics."""
