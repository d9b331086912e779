"""CloudWatch: container output as log events (`logs`), percentiles from real samples (`percentiles`), and statistics rounded as AWS rounds them (`rounding`)."""
