"""Which events the stream workers keep: signed by the run they name, or by an orchestrator."""

from __future__ import annotations

import uuid

from schemas import auth
from stream_processors.provenance import UNSIGNED, Provenance, bad_signature, signature

SECRET = "unit-test-secret"
VALUE = b'{"simulation_id": "x", "epoch": 1}'


def sig(key: str, value: bytes = VALUE) -> bytes:
    return auth.mac(key, value).encode()


def test_it_keeps_an_event_signed_by_its_own_run() -> None:
    sid = uuid.uuid4()
    check = Provenance(SECRET)
    assert check.refusal(sig(auth.run_key(SECRET, sid)), VALUE, sid) is None
    # openssl prints upper case for some users' tools; the hex text is what counts
    assert check.refusal(sig(auth.run_key(SECRET, sid)).upper(), VALUE, sid) is None


def test_it_refuses_another_runs_key_a_changed_value_and_a_wrong_secret() -> None:
    sid, other = uuid.uuid4(), uuid.uuid4()
    check = Provenance(SECRET)
    reason = f"bad signature for simulation {sid}"
    assert check.refusal(sig(auth.run_key(SECRET, other)), VALUE, sid) == reason
    assert check.refusal(sig(auth.run_key(SECRET, sid)), VALUE + b" ", sid) == reason
    assert check.refusal(sig(auth.run_key("guessed", sid)), VALUE, sid) == reason
    assert check.refusal(b"not hex \xff", VALUE, sid) == reason


def test_only_status_events_take_the_orchestrators_key() -> None:
    sid = uuid.uuid4()
    check = Provenance(SECRET)
    orchestrator = sig(auth.service_key(SECRET, "orchestrator"))
    assert check.refusal(orchestrator, VALUE, sid, service=True) is None
    assert check.refusal(orchestrator, VALUE, None, service=True) is None
    assert check.refusal(orchestrator, VALUE, sid) == bad_signature(sid)
    assert check.refusal(sig(auth.service_key(SECRET, "web")), VALUE, sid, service=True) == (
        bad_signature(sid)
    )
    assert "no simulation" in (check.refusal(sig(auth.run_key(SECRET, sid)), VALUE, None) or "")


def test_it_derives_each_run_key_once_and_keeps_a_bounded_number() -> None:
    check = Provenance(SECRET, cached=2)
    sids = [uuid.uuid4() for _ in range(3)]
    for sid in [*sids, sids[2], sids[2]]:
        assert check.refusal(sig(auth.run_key(SECRET, sid)), VALUE, sid) is None
    info = check.run_mac.cache_info()
    assert (info.misses, info.hits, info.currsize, info.maxsize) == (3, 2, 2, 2)


def test_it_finds_the_signature_header_in_either_form() -> None:
    assert signature([("other", b"1"), (auth.SIGNATURE_HEADER, b"ab")]) == b"ab"
    assert signature({auth.SIGNATURE_HEADER: b"cd"}) == b"cd"
    assert signature(None) is None and signature([]) is None
    assert signature([("other", b"1")]) is None
    assert UNSIGNED == "unsigned event"
