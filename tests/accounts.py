"""Accounts and signed commands for tests that talk to the orchestrators without the web.

Every component the tests start inherits NNT_COMMAND_SECRET=TEST_SECRET (tests/conftest.py),
so a test can sign commands as the accounts below once it has published their records to
`nnt.accounts`, exactly as the web does for its users. Their ids are far above any the web's
test databases hand out.
"""

from __future__ import annotations

from typing import Any, TypeVar

from schemas import auth, topics
from schemas.accounts import AccountRecord, Limits
from schemas.codecs import dumps
from schemas.commands import CommandBase

TEST_SECRET = "nntracker-tests-command-secret"
USERS = {"ana": 900_001, "bob": 900_002, "kcat": 900_003, "root": 900_009}
C = TypeVar("C", bound=CommandBase)


def record(name: str, **fields: Any) -> AccountRecord:
    """The account record of a test user (`root` is staff)."""
    fields.setdefault("is_staff", name == "root")
    return AccountRecord(user_id=USERS[name], username=name, **fields)


def publish_accounts(bootstrap: str, *records: AccountRecord) -> None:
    """Put account records on nnt.accounts (all the test users when none are given)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    for rec in records or tuple(record(name) for name in USERS):
        producer.produce(topics.ACCOUNTS, key=str(rec.user_id).encode(), value=dumps(rec))
    assert producer.flush(10) == 0, "the account records did not reach Kafka"


def sign_as(command: C, name: str = "ana", generation: int = 0) -> C:
    """`command` signed with the command key of test user `name`."""
    key = auth.user_key(TEST_SECRET, USERS[name], generation)
    signed: C = command.signed(f"user:{USERS[name]}", key, generation)
    return signed


def limits(name: str, **values: int) -> AccountRecord:
    """A test user's record with limits set."""
    return record(name, limits=Limits(**values))
