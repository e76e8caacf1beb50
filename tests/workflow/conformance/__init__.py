"""Step Functions executions recorded on AWS, replayed through the local engine (see README.md)."""
