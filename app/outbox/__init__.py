"""The transactional outbox: side effects written with the change that caused them."""
