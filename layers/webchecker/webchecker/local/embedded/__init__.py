"""Services Webchecker can start on loopback: Kafka broker, PostgreSQL, Parameter Store."""
