"""The single faust.App of NN Tracker's stream processors, its topics and its sink."""

from __future__ import annotations

import faust

from schemas import topics
from schemas.topics import MAX_MESSAGE_BYTES
from stream_processors.settings import load
from stream_processors.sink import Sink
from stream_processors.throttle import LiveThrottle

settings = load()
settings.datadir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    "nntracker-stream",
    broker=f"kafka://{settings.nnt_kafka_bootstrap}",
    # Payloads are decoded by schemas (JSON or the binary tensor codec), so a bad message is
    # ours to dead-letter instead of a Faust serializer error.
    key_serializer="raw",
    value_serializer="raw",
    store="memory://",
    datadir=str(settings.datadir),
    topic_allow_declare=True,
    topic_disable_leader=True,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    # A killed worker's partitions move to the others within seconds, not Faust's 60 s default.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    producer_max_request_size=MAX_MESSAGE_BYTES,
    consumer_max_fetch_size=MAX_MESSAGE_BYTES,
)


def topic(name: str) -> faust.TopicT:
    """A product topic with its declared partition count."""
    return app.topic(name, partitions=topics.PARTITIONS[name], key_type=bytes, value_type=bytes)


epochs_topic = topic(topics.EPOCHS)
tensors_topic = topic(topics.TENSORS)
status_topic = topic(topics.STATUS)
resources_topic = topic(topics.RESOURCES)
live_topic = topic(topics.LIVE)
dead_letter_topic = topic(topics.DEAD_LETTER)

sink = Sink(settings.database_url, settings.nnt_db_retry_max_s)
throttle = LiveThrottle(settings.live_interval)
