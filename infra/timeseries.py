"""The time-series tables of a deployment, set up from the environment: store.schema creates
them (all of their SQL lives in store/); this reads its settings (NNT_TIMESCALEDB, the
retention and downsampling variables) and turns its refusals into InfraError, for
`nntracker up`, the compose `provision` service, the tests and the benchmarks.
"""

from __future__ import annotations

from pydantic import ValidationError

from infra.settings import InfraError, TimescaleSettings, load_timescale
from schemas.common import variable_error
from schemas.downsampling import DownsamplingSetting
from store import schema
from store.schema import Mode


class Downsampling(DownsamplingSetting):
    """The stream workers' downsampling variables, read here too: on TimescaleDB the
    database applies them, as the definition and policies of the continuous aggregate and
    the thinning job."""


def load_downsampling() -> Downsampling:
    """Read the downsampling variables; raise InfraError naming a bad one."""
    try:
        return Downsampling()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise InfraError(f"{name}: {why}") from exc


def apply(
    database_url: str,
    months_ahead: int = 3,
    timescaledb: bool | None = None,
    settings: TimescaleSettings | None = None,
    downsampling: Downsampling | None = None,
) -> str:
    """Create or complete the schema; returns 'timescaledb' or 'native'.

    `timescaledb`: True requires it, False forces native partitioning, None follows
    NNT_TIMESCALEDB (auto: TimescaleDB when loadable). `settings` and `downsampling`: None
    reads them from the environment.
    """
    return apply_schema(database_url, months_ahead, timescaledb, settings, downsampling).name


def apply_schema(
    database_url: str,
    months_ahead: int = 3,
    timescaledb: bool | None = None,
    settings: TimescaleSettings | None = None,
    downsampling: Downsampling | None = None,
) -> Mode:
    """apply(), returning the mode with its TimescaleDB version and the reason for it."""
    s = settings or load_timescale()
    d = downsampling or load_downsampling()
    want = s.nnt_timescaledb if timescaledb is None else ("on" if timescaledb else "off")
    try:
        return schema.apply(database_url, want, s, d, months_ahead)
    except schema.SchemaError as exc:
        raise InfraError(str(exc)) from exc
