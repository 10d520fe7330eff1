"""Stage 1, the scheduler: the site catalog (Parameter Store), the due rule, the fan-out."""
