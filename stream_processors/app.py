"""The single faust.App of NN Tracker's stream processors, its topics and its sink."""

from __future__ import annotations

from typing import Any

import faust
from faust.sensors.monitor import Monitor
from faust.transport.drivers.aiokafka import Producer as AIOKafkaDriverProducer

from schemas import topics
from schemas.topics import MAX_MESSAGE_BYTES
from store.sink import Sink
from stream_processors.consumer import Direct, RewindingConsumer
from stream_processors.downsample import Maintenance, Policy
from stream_processors.provenance import Provenance
from stream_processors.settings import load
from stream_processors.tags import TagCache
from stream_processors.throttle import KeyedThrottle, LiveThrottle


class LeanMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping (timings kept for a web view we
    disable): about a tenth of the worker's CPU per event at ingest rates."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message counters."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Skip per-event timing."""

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """Skip per-event timing."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Skip per-message counters."""


class IdempotentProducer(AIOKafkaDriverProducer):
    """Faust's aiokafka producer with acks=all and idempotence: a retried send is never
    duplicated or reordered. faust-streaming 0.15 turns idempotence on only inside
    exactly-once transactions and has no setting for it, so it is added here."""

    def _settings_extra(self) -> Any:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class StreamApp(faust.App):
    """faust.App whose producer is an IdempotentProducer and whose consumer reads again what
    its fetcher skipped (stream_processors.consumer)."""

    def _new_producer(self) -> Any:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> Any:
        consumer = RewindingConsumer(
            self.transport,
            callback=self.topics.on_message,
            loop=self.loop,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
        )
        consumer.written.topics.update(SINK_TOPICS)  # commits follow rows on these
        # nnt.epochs, the busiest, reaches its agent past Faust's streams (consumer.Direct)
        consumer.direct[topics.EPOCHS] = Direct(2 * settings.nnt_stream_batch_size)
        return consumer


settings = load()
settings.datadir.mkdir(parents=True, exist_ok=True)

app = StreamApp(
    topics.STREAM_GROUP,
    broker=f"kafka://{settings.nnt_kafka_bootstrap}",
    broker_credentials=settings.faust_credentials(),  # NNT_KAFKA_* SASL/TLS (schemas.kafkaauth)
    topic_replication_factor=settings.nnt_stream_replication_factor,
    # Payloads are decoded by schemas (JSON or the binary tensor codec), so a bad message is
    # ours to dead-letter instead of a Faust serializer error.
    key_serializer="raw",
    value_serializer="raw",
    store="memory://",
    datadir=str(settings.datadir),
    topic_allow_declare=True,
    topic_disable_leader=True,
    web_enabled=False,
    # No standby copies of the tables: their recovery on every rebalance stalled the
    # partitions handed over by a stopping worker (tables are rebuilt from the changelog).
    table_standby_replicas=0,
    monitor=LeanMonitor(),
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    # A killed worker's partitions move to the others within seconds, not Faust's 60 s default.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    # Room for two full batches per stream: the next batch is fetched while one is written.
    stream_buffer_maxsize=max(4096, 2 * settings.nnt_stream_batch_size),
    producer_acks=-1,  # acks=all (IdempotentProducer insists on it too)
    producer_max_request_size=MAX_MESSAGE_BYTES,
    consumer_max_fetch_size=MAX_MESSAGE_BYTES,
)


def topic(name: str) -> faust.TopicT:
    """A product topic with its declared partition count."""
    return app.topic(name, partitions=topics.PARTITIONS[name], key_type=bytes, value_type=bytes)


# The topics whose events become rows: the agents (stream_processors.agents) persist them.
SINK_TOPICS = (topics.EPOCHS, topics.TENSORS, topics.STATUS, topics.RESOURCES)
epochs_topic = topic(topics.EPOCHS)
tensors_topic = topic(topics.TENSORS)
status_topic = topic(topics.STATUS)
resources_topic = topic(topics.RESOURCES)
live_topic = topic(topics.LIVE)
dead_letter_topic = topic(topics.DEAD_LETTER)

# Internal (ours only, not part of the product contract): epoch points of tagged simulations,
# re-keyed by tag so that every aggregate of one tag lives in one partition.
TAG_POINTS = topics.TAG_POINTS
TAG_PARTITIONS = 3
tag_points_topic = app.topic(
    TAG_POINTS, partitions=TAG_PARTITIONS, internal=True, key_type=bytes, value_type=bytes
)

# simulation id -> tags, from status events that carry them (changelog partition = the
# status event's partition; simulations not seen here are looked up in nnt_simulation).
simulation_tags = app.Table(
    "simulation-tags", default=None, partitions=topics.PARTITIONS[topics.STATUS]
)
# "tag|metric|epoch" -> count, sum, sumsq, min, max and the contributing simulations.
tag_aggregates = app.Table("tag-aggregates", default=None, partitions=TAG_PARTITIONS)

sink = Sink(settings.database_url, settings.nnt_db_retry_max_s)
# Events are stored only when signed by their run (or an orchestrator): provenance.py.
provenance = Provenance(settings.command_secret())
# Downsampling and retention (native tables only) run on their own connection: a long pass
# never blocks ingest.
maintenance_sink = Sink(settings.database_url, settings.nnt_db_retry_max_s)
throttle = LiveThrottle(settings.live_interval)
tag_throttle = KeyedThrottle(settings.live_interval)
tag_cache = TagCache(settings.nnt_tag_cache_s)
policy = Policy(
    full_tensor_period=settings.nnt_full_tensor_period,
    batch_raw_age_s=settings.nnt_batch_raw_age_s,
    batch_bucket_steps=settings.nnt_batch_bucket_steps,
    tensor_thin_age_s=settings.nnt_tensor_thin_age_s,
    tensor_keep_every=settings.nnt_tensor_keep_every,
)
maintenance = Maintenance(policy)
