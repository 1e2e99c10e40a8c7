"""The task queue: dead-letter and retry plumbing, the Redis transport fix, beat's scheduler."""
