"""Background jobs: outbox dispatch and the scheduler, in-app by default or as `laurel worker`."""
