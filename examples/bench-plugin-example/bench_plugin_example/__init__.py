"""bench-plugin-example: how an installed package adds a task, dataset, metrics, a submission format and a model
to bench without touching bench (see README.md)."""
