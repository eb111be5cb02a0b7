"""`nntracker db status` without a server: its one-line errors and its text layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import cli
from infra import dbstatus
from infra.dbstatus import SimulationUsage, Status, TableUsage, Usage, UserUsage

SECRET = "s3cret-pw"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_it_names_database_url_and_nntracker_up_when_there_is_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("NNT_HOME", str(tmp_path))

    code, out, err = run_cli(["db", "status"], capsys)

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "DATABASE_URL" in err and "`nntracker up`" in err
    assert not (tmp_path / "pg.password").exists()  # asking made no embedded server password


def test_it_says_in_one_line_which_database_it_cannot_reach_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nnt:{SECRET}@127.0.0.1:1/nntracker")

    code, _, err = run_cli(["db", "status"], capsys)

    assert code == 1 and err.count("\n") == 1
    assert err.startswith("nntracker: cannot connect to the database at 127.0.0.1:1/nntracker (")
    assert SECRET not in err and "DATABASE_URL" in err


def test_it_refuses_a_negative_top(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/x")
    code, _, err = run_cli(["db", "status", "--top", "-1"], capsys)
    assert code == 1 and "--top" in err


def _native_status(owners: int) -> Status:
    users = [
        UserUsage(rows=10 * (owners - i), bytes=1024 * (owners - i), raw_bytes=1024 * (owners - i),
                  owner=f"user{i}", simulations=1)
        for i in range(owners)
    ]  # fmt: skip
    sims = [
        SimulationUsage(rows=u.rows, bytes=u.bytes, raw_bytes=u.raw_bytes,
                        simulation_id=f"{i:08d}-0000-0000-0000-000000000000", owner=u.owner,
                        name=f"run {i}")
        for i, u in enumerate(users)
    ]  # fmt: skip
    total = sum(u.bytes for u in users)
    rows = sum(u.rows for u in users)
    return Status(
        database="db.example:5432/nntracker",
        server_version="17.2",
        mode="native",
        timescaledb_version=None,
        estimate="raw",
        database_bytes=3 * total,
        total=Usage(rows=rows, bytes=total, raw_bytes=total),
        tables=[TableUsage(rows=rows, bytes=total, raw_bytes=total, table="nnt_tensor")],
        simulations=sims,
        users=users,
    )


def test_it_lays_out_native_storage_per_user_with_what_top_left_out() -> None:
    text = dbstatus.render(_native_status(4), by="user", top=2)

    lines = text.splitlines()
    assert lines[2] == "mode         native partitioning: raw bytes only (no columnstore)"
    assert lines[3] == "size         30.0 KiB in all; time-series tables 10.0 KiB on disk"
    assert lines[6:8] == ["TABLE       ROWS   ON DISK", "nnt_tensor   100  10.0 KiB"]
    assert lines[9:] == [
        "USER   SIMULATIONS  ROWS  ON DISK",
        "user0            1    40  4.0 KiB",
        "user1            1    30  3.0 KiB",
        "… 2 more users, 3.0 KiB on disk (--top 0: all)",
    ]


def test_it_lists_simulations_with_their_owner_and_name_and_all_with_top_zero() -> None:
    lines = dbstatus.render(_native_status(3), by="simulation", top=0).splitlines()

    assert lines[9].split() == ["SIMULATION", "OWNER", "ROWS", "ON", "DISK", "NAME"]
    assert lines[10].split() == ["00000000-0000-0000-0000-000000000000", "user0", "30", "3.0",
                                 "KiB", "run", "0"]  # fmt: skip
    assert len(lines) == 13  # three simulations, nothing left out


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 2**30, "5.0 GiB"),
        (3 * 2**50, "3072.0 TiB"),
    ],
)
def test_it_shows_sizes_in_binary_units(n: int, shown: str) -> None:
    assert dbstatus.size(n) == shown


def test_it_never_shows_credentials_of_a_url() -> None:
    assert dbstatus.where(f"postgresql://u:{SECRET}@h:6432/db?sslmode=require") == "h:6432/db"
