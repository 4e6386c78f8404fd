"""Cross-cutting infrastructure: configuration, errors, clock, database, tasks, real time, observability.

Nothing in ``core`` imports a domain package (checked by import-linter).
"""
