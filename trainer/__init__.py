"""NN Tracker trainer: runs one Keras training and streams its internals to Kafka.

Imports nothing of ours except `schemas`; TensorFlow is imported lazily by the modules
that need it, so `trainer.publisher` and `trainer.stats` stay cheap to import.
"""
