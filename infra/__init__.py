"""Local provisioning (Kafka, PostgreSQL, time-series schema), the `nntracker` CLI and the stack supervisor."""
