"""Stage 3, the writer: the MSK event, the database, migrations, and storing batches."""
