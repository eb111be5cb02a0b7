"""The downsampling variables read by the schema set-up for TimescaleDB (infra.timeseries)
are the stream workers' own (stream_processors.settings): same names, defaults and bounds, so
one value means the same in either form of the database."""

from __future__ import annotations

import pytest

from infra import timeseries
from infra.settings import InfraError
from schemas.downsampling import DownsamplingSetting
from stream_processors.settings import StreamSettings


def test_it_reads_the_downsampling_variables_as_the_stream_workers_do() -> None:
    # One declaration (schemas.downsampling) for both readers.
    assert issubclass(StreamSettings, DownsamplingSetting)
    assert issubclass(timeseries.Downsampling, DownsamplingSetting)
    assert set(timeseries.Downsampling.model_fields) == {
        "nnt_batch_raw_age_s",
        "nnt_batch_bucket_steps",
        "nnt_tensor_thin_age_s",
        "nnt_tensor_keep_every",
    }


def test_it_names_a_bad_downsampling_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNT_BATCH_BUCKET_STEPS", "1")
    with pytest.raises(InfraError, match="NNT_BATCH_BUCKET_STEPS"):
        timeseries.load_downsampling()
    monkeypatch.setenv("NNT_BATCH_BUCKET_STEPS", "20")
    monkeypatch.setenv("NNT_BATCH_RAW_AGE_S", "7200")
    got = timeseries.load_downsampling()
    assert (got.nnt_batch_bucket_steps, got.nnt_batch_raw_age_s) == (20, 7200.0)
