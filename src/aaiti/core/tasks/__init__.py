"""Background jobs: the TaskRunner protocol, the local process-pool runner and the ``jobs`` table."""
