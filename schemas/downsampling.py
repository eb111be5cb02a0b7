"""The downsampling variables, declared once: the stream workers act on them on native tables,
the schema set-up (infra.timeseries) hands them to TimescaleDB's own jobs on hypertables, so
one value means the same in either form of the database (docs/stream-processing.md)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DownsamplingSetting(BaseSettings):
    """What is kept raw, reduced and thinned, and when."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    nnt_batch_raw_age_s: float = Field(
        default=3600.0,
        ge=0,
        description="batch-level points older than this are reduced into buckets (TimescaleDB: "
        "read by the schema set-up, the continuous aggregate's refresh lag)",
    )
    nnt_batch_bucket_steps: int = Field(
        default=10,
        ge=2,
        description="batch steps per reduced bucket (min/max/last; TimescaleDB: fixed when the "
        "continuous aggregate is created)",
    )
    nnt_tensor_thin_age_s: float = Field(
        default=30 * 86400.0,
        ge=0,
        description="full tensors older than this are thinned (TimescaleDB: by a job the schema "
        "set-up configures)",
    )
    nnt_tensor_keep_every: int = Field(
        default=10,
        ge=1,
        description="thinning keeps full tensors of epochs that are multiples of k (TimescaleDB: "
        "the thinning job's)",
    )
