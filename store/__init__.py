"""The shared record in PostgreSQL: run records, command claims, host leases and blobs.

Several orchestrators on different hosts coordinate through these tables and Kafka, never
through a shared filesystem. Every statement that touches them lives in this package.
"""
