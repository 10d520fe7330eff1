"""Stage 2, the checker: SSRF guard, connection, probe, the invocation, and the Kafka transport."""
