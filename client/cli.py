"""`nntracker`: run the local stack and drive experiments from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from client import progress
from client.api import ApiClient, default_client
from infra import settings as settings_mod
from infra.settings import InfraError, StackSettings

DEMO_USER = "demo"
DEMO_PASSWORD_FILE = "demo-password"  # in $NNT_HOME, mode 600
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one command; errors print one clear line and exit non-zero."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "manage":
        return _manage(args.rest)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_mod.load()
        return int(args.func(args, settings) or 0)
    except InfraError as exc:
        print(f"nntracker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nntracker: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nntracker", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole local stack in the foreground (Ctrl-C stops it)")
    up.add_argument("--demo", action="store_true", help="submit the demo experiment once healthy")
    up.set_defaults(func=cmd_up)
    sub.add_parser("demo", help="create the demo user and submit the demo experiment").set_defaults(
        func=cmd_demo
    )
    login = sub.add_parser("login", help="get an API token and keep it in $NNT_HOME/token")
    login.add_argument("username")
    login.add_argument("--password", default=os.environ.get("NNT_PASSWORD"))
    login.set_defaults(func=cmd_login)
    submit = sub.add_parser(
        "submit", help="submit an experiment (appendix-A config, model, datasets)"
    )
    submit.add_argument("config", type=Path, help="the experiment configuration (JSON)")
    submit.add_argument("--model", type=Path, required=True, help="the Keras model JSON file")
    for name in ("train", "test", "val"):
        submit.add_argument(f"--{name}", type=Path, help=f"{name} dataset file")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="follow the runs until they end (exit 0 only if all finished)",
    )
    _follow_options(submit)
    submit.set_defaults(func=cmd_submit)
    ls = sub.add_parser("ls", help="list simulations")
    ls.add_argument("--status")
    ls.add_argument("--tag")
    ls.set_defaults(func=cmd_ls)
    show = sub.add_parser(
        "show", help="one simulation: state, and what is wrong with it (its diagnoses)"
    )
    show.add_argument("id", metavar="ID")
    show.add_argument("--all", action="store_true", help="past diagnoses too, not only active")
    show.set_defaults(func=cmd_show)
    alerts = sub.add_parser(
        "alerts",
        help="new diagnoses of your runs (--follow: keep printing them as they come)",
        description="Print the diagnoses your runs got since --since (default: the last 24 "
        "hours), newest last; with --follow, keep asking every --interval seconds and print "
        "each new one once. Ctrl-C ends it.",
    )
    alerts.add_argument("--since", metavar="ISO", help="a time such as 2025-05-01T09:00Z")
    alerts.add_argument("--follow", action="store_true", help="keep printing new ones")
    alerts.add_argument("--interval", type=float, default=5.0, metavar="S", help="default 5")
    alerts.set_defaults(func=cmd_alerts)
    for action, help_text in (
        ("pause", "freeze"),
        ("resume", "continue"),
        ("stop", "checkpoint and stop"),
        ("rm", "delete with all its data"),
    ):
        a = sub.add_parser(action, help=f"{help_text} simulations")
        a.add_argument("ids", nargs="+", metavar="ID")
        a.set_defaults(func=cmd_action, action="delete" if action == "rm" else action)
    wait = sub.add_parser(
        "wait", help="follow simulations until they end (exit 0 only if all finished)"
    )
    wait.add_argument("ids", nargs="+", metavar="ID")
    _follow_options(wait)
    wait.set_defaults(func=cmd_wait)
    export = sub.add_parser(
        "export",
        help="download a simulation's zip (the summary; --full: every recorded value)",
        description="Download a run's zip: by default the summary (configuration, metrics, "
        "per-layer statistics and histograms; kB to MB). --full adds every recorded kernel, "
        "bias and gradient as NPZ (its size is shown first; --float16 halves it).",
    )
    export.add_argument("id", metavar="ID")
    export.add_argument("-o", "--output", type=Path, help="file or existing folder to save into")
    export.add_argument(
        "--full", action="store_true", help="every recorded value too, as NPZ (large)"
    )
    export.add_argument(
        "--float16", action="store_true", help="with --full: values as float16 (half the size)"
    )
    export.set_defaults(func=cmd_export)
    _db_parser(sub)
    manage = sub.add_parser("manage", help="Django management commands")
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _db_parser(sub: Any) -> None:
    """`nntracker db status`: an operator's view of the database, read directly."""
    db = sub.add_parser("db", help="the database itself, read directly (operators)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    status = db_sub.add_parser(
        "status",
        help="database mode, versions and storage per user or simulation",
        description="The time-series tables' mode (TimescaleDB or native partitioning) and "
        "versions, and their storage per table and per user or simulation: rows (exact) and "
        "bytes on disk, with TimescaleDB also uncompressed. Per simulation, each table's size "
        "(heap, TOAST, indexes) is shared in proportion to the bytes its rows and columnstore "
        "segments hold (pg_column_size; nothing is decompressed, so it stays fast); native "
        "partitioning has no columnstore and reports raw bytes only. It connects to "
        "DATABASE_URL, else to the local stack's PostgreSQL (`nntracker up`), with that "
        "URL's credentials: a command for whoever runs the database (it lists every user's "
        "runs).",
    )
    status.add_argument(
        "--by",
        choices=("user", "simulation"),
        default="user",
        help="list storage per owner (default) or per simulation",
    )
    status.add_argument(
        "--top", type=int, default=20, metavar="N", help="the N largest only (0: all; default 20)"
    )
    status.add_argument("--json", action="store_true", help="the whole report as JSON")
    status.set_defaults(func=cmd_db_status)


def cmd_up(args: argparse.Namespace, settings: StackSettings) -> int:
    """Start the stack; with --demo, submit the demo once it is healthy."""
    from infra.stack import Stack, say

    stack = Stack(settings)

    def demo() -> None:
        try:
            say("stack", demo_submit(settings, stack.env()))
        except InfraError as exc:
            say("stack", f"demo not submitted: {exc}")

    return stack.up(on_ready=demo if args.demo else None)


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by this user only (mode 600 from the start, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def ensure_demo_user(
    settings: StackSettings, env: dict[str, str] | None = None
) -> tuple[str, bool]:
    """The demo user's password, and whether the user was created now.

    Created only if missing, with a random password kept in $NNT_HOME/demo-password (mode
    600); an existing demo user is never changed (an admin may have disabled it). The password
    goes to `ensure_user` on its standard input, never on a command line (`ps`).
    """
    path = settings.nnt_home / DEMO_PASSWORD_FILE
    fresh = not path.exists()
    if fresh:
        _write_private(path, secrets.token_urlsafe(18))
    password = path.read_text().strip()
    args = ["ensure_user", "--username", DEMO_USER, "--create-only", "--password-stdin"]
    result = _django(args, env, stdin=password + "\n")
    if result.returncode != 0:
        if fresh:
            path.unlink(missing_ok=True)
        raise InfraError(f"could not create the demo user: {result.stderr.strip()[-500:]}")
    created = result.stdout.startswith("created")
    if fresh and not created:
        path.unlink(missing_ok=True)  # the user was made elsewhere: this password opens nothing
        raise InfraError(
            f"a user named {DEMO_USER!r} already exists and {path} does not hold its password; "
            "log in with its own password, or delete it in the admin console and run "
            "`nntracker demo` again. A demo user made by an older version still has the public "
            "password 'demo-password': change it or disable the user"
        )
    return password, created


def demo_submit(settings: StackSettings, env: dict[str, str] | None = None) -> str:
    """Ensure the demo user, submit the demo experiment unless it exists; returns a message
    that shows the password only on the run that created the user."""
    password, new_user = ensure_demo_user(settings, env)
    client = default_client(settings.nnt_web_port)
    try:
        client.login(DEMO_USER, password)
    except InfraError as exc:
        raise InfraError(
            f"the demo user does not sign in with the password in "
            f"{settings.nnt_home / DEMO_PASSWORD_FILE} (disabled by an admin, or its password "
            f"changed); it is left as it is ({exc})"
        ) from None
    existing = client.get("/api/simulations", tag="demo")
    items = existing.get("items", existing) if isinstance(existing, dict) else existing
    if not items:
        from trainer.demo import write_demo

        folder = Path(tempfile.mkdtemp(prefix="nnt-demo-"))
        config, model, paths = write_demo(folder)
        model_path = folder / "model.json"
        model_path.write_text(json.dumps(model))
        datasets = {k: Path(v) for k, v in paths.items() if v}
        created = client.submit(client.upload_body(config, model_path, datasets))
        first = created["simulations"][0]
    else:
        first = items[0]["id"]
    url = f"{client.base}/simulations/{first}/"
    from infra.stack import paint

    where = settings.nnt_home / DEMO_PASSWORD_FILE
    login = (
        f"login: {DEMO_USER} / {password}"
        if new_user
        else f"login: {DEMO_USER}, password in {where}"
    )
    return f"{paint('demo ready:', 1)} open {url}  ({login})"


def cmd_demo(args: argparse.Namespace, settings: StackSettings) -> int:
    """Submit the demo experiment to a running stack."""
    print(demo_submit(settings))
    return 0


def _client(settings: StackSettings) -> ApiClient:
    client = default_client(settings.nnt_web_port)
    token_file = settings.nnt_home / "token"
    if not client.token and token_file.exists():
        client.token = token_file.read_text().strip()
    if not client.token:
        raise InfraError("not logged in: run `nntracker login USERNAME` or set NNT_TOKEN")
    return client


def cmd_login(args: argparse.Namespace, settings: StackSettings) -> int:
    """Store a token for later commands."""
    import getpass

    password = args.password or getpass.getpass(f"password for {args.username}: ")
    token = default_client(settings.nnt_web_port).login(args.username, password)
    path = settings.nnt_home / "token"
    path.unlink(missing_ok=True)
    _write_private(path, token)
    print(f"logged in as {args.username}; token saved to {path}")
    return 0


def _follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between two looks at the runs (default 2)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="give up after this many seconds (default: wait until they end)",
    )


def _file(path: Path, option: str, what: str) -> Path:
    """An existing, readable file, or an error naming the option and the fix."""
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise InfraError(f"{option}: {path} {state}; pass the path of {what}")
    return path


def _config(path: Path) -> dict[str, Any]:
    """The configuration file as a JSON object, or an error saying where it is broken."""
    _file(path, "CONFIG", "your experiment configuration (JSON)")
    try:
        config = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise InfraError(
            f"CONFIG: {path} is not a text file; pass the JSON configuration"
        ) from None
    except ValueError as exc:
        raise InfraError(f"CONFIG: {path} is not valid JSON ({exc}); fix the file") from None
    if not isinstance(config, dict):
        raise InfraError(
            f'CONFIG: {path} must hold a JSON object ({{"name": ...}}), '
            f"not a {type(config).__name__}"
        )
    return config


def _ids(raw: list[str]) -> list[str]:
    """Simulation ids as UUIDs, or an error naming the bad one."""
    out = []
    for value in raw:
        try:
            out.append(str(uuid.UUID(value.strip())))
        except ValueError:
            raise InfraError(
                f"ID: {value!r} is not a simulation id (a UUID like "
                "3f2b9c1e-…); `nntracker ls` lists yours"
            ) from None
    return out


def cmd_submit(args: argparse.Namespace, settings: StackSettings) -> int:
    """Submit an experiment from files (upload progress shown); with --wait, follow the runs."""
    config = _config(args.config)
    model = _file(args.model, "--model", "your Keras model JSON (model.to_json())")
    datasets = {
        k: _file(getattr(args, k), f"--{k}", f"the {k} dataset")
        for k in ("train", "test", "val")
        if getattr(args, k)
    }
    client = _client(settings)
    with progress.transfer("uploaded", args.config.name) as shown:
        body = client.upload_body(config, model, datasets, on_read=shown.advance)
        shown.start(len(body))
        created = client.submit(body)
    print(f"experiment {created['experiment_id']}: {len(created['simulations'])} simulation(s)")
    for sid in created["simulations"]:
        print(f"  {sid}")
    for note in created.get("notes") or []:
        print(f"  pre-flight: {note}")
    if not args.wait:
        return 0
    return _wait(client, [str(s) for s in created["simulations"]], args.interval, args.timeout)


def cmd_wait(args: argparse.Namespace, settings: StackSettings) -> int:
    """Follow simulations until every one has ended."""
    return _wait(_client(settings), _ids(args.ids), args.interval, args.timeout)


def _wait(client: ApiClient, ids: list[str], interval: float, timeout: float | None) -> int:
    """0 when every run finished; 1 when one failed, stopped, was deleted or is still going."""
    if interval <= 0:
        raise InfraError("--interval: must be more than 0 seconds")
    last = progress.follow(
        lambda sid: client.get(f"/api/simulations/{sid}"), ids, interval, timeout
    )
    for sim in last.values():
        print(progress.describe(sim))
    # A run the experiment's early-stop rule ended did what was asked of it: not a failure.
    early = [s for s in last.values() if s["status"] == "stopped" and s.get("early_stop")]
    unfinished = [s for s in last.values() if s["status"] != "finished" and s not in early]
    if early:
        saved = sum(s["early_stop"]["saved_epochs"] for s in early)
        print(f"{len(early)} simulation(s) stopped early on a fatal diagnosis, saving {saved} "
              "epochs")  # fmt: skip
    if not unfinished:
        print(f"all {len(last) - len(early)} other simulation(s) finished" if early
              else f"all {len(last)} simulation(s) finished")  # fmt: skip
        return 0
    running = [s for s in unfinished if s["status"] not in progress.TERMINAL]
    if running:
        print(
            f"nntracker: {len(running)} simulation(s) still running after --timeout "
            f"{timeout:g}s; `nntracker wait` again to keep following",
            file=sys.stderr,
        )
    else:
        print(f"nntracker: {len(unfinished)} simulation(s) did not finish", file=sys.stderr)
    return 1


def cmd_ls(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print simulations as a table."""
    data = _client(settings).get("/api/simulations", status=args.status, tag=args.tag)
    items = data.get("items", data) if isinstance(data, dict) else data
    if not items:
        if args.status or args.tag:
            print("no simulation matches; `nntracker ls` without filters lists all of yours")
        else:
            print("no simulations yet: `nntracker submit` or `nntracker demo` creates some")
        return 0
    print(f"{'ID':36}  {'STATUS':9}  {'EPOCH':>9}  {'HEALTH':8}  NAME")
    for sim in items:
        tags = f"  [{', '.join(sim['tags'])}]" if sim.get("tags") else ""
        verdict = (sim.get("health") or {}).get("verdict") or "-"
        print(
            f"{sim['id']:36}  {sim['status']:9}  {sim['epoch']:>4}/{sim['total_epochs']:<4}  "
            f"{verdict:8}  {sim['name']}{tags}"
        )
    return 0


def diagnosis_lines(d: dict[str, Any]) -> list[str]:
    """One diagnosis as the CLI prints it: severity, title and summary, then the fix."""
    layers = f" (layers: {', '.join(d['layers'])})" if d.get("layers") else ""
    since = f"since epoch {d['first_epoch']}" if d.get("first_epoch") is not None else ""
    if d.get("active") is False:
        since = f"epochs {d['first_epoch']}-{d.get('last_epoch', '?')}, no longer seen"
    head = f"  {str(d.get('severity', '')).upper():7}  {d.get('title') or d.get('problem')}"
    return [
        f"{head}: {d.get('summary', '')}{layers}" + (f" [{since}]" if since else ""),
        f"           try: {d.get('fix', '')}",
    ]


def cmd_show(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print one run's state and its diagnoses (title, summary, fix)."""
    [sid] = _ids([args.id])
    sim = _client(settings).get(f"/api/simulations/{sid}")
    print(f"{sim.get('name') or sid}\n  {progress.describe(sim)}")
    health = (sim.get("health") or {}).get("verdict")
    if health:
        print(f"  health: {health}")
    every = sim.get("diagnoses")
    shown = [d for d in every or [] if args.all or d.get("active", True)]
    if every is None or (not every and not health):
        print("no diagnosis: the trainer sent none for this run (an older SDK, or no epoch yet)")
    elif not shown:
        print("no active diagnosis: nothing looks wrong with this run")
    else:
        print(f"diagnoses ({len(shown)}):")
        for d in shown:
            print("\n".join(diagnosis_lines(d)))
    return 0


def _since(text: str | None) -> str:
    """--since as the API takes it (ISO 8601), default 24 hours ago."""
    from datetime import UTC, datetime, timedelta

    if not text:
        return (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InfraError(
            f"--since: {text!r} is not a time; write it as ISO 8601, e.g. 2025-05-01T09:00Z"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def alert_line(a: dict[str, Any]) -> str:
    """One alert: when, which run, what, and what to try."""
    run = a.get("name") or str(a.get("simulation_id", ""))[:8]
    return (
        f"{str(a.get('at', ''))[:19]}  {str(a.get('severity', '')).upper():7}  {run}: "
        f"{a.get('title')} since epoch {a.get('first_epoch')} - {a.get('summary', '')}\n"
        f"    try: {a.get('fix', '')}"
    )


def cmd_alerts(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print new diagnoses of the user's runs; with --follow, poll /api/alerts for more."""
    import time

    if args.interval <= 0:
        raise InfraError("--interval: must be more than 0 seconds")
    client, since, seen = _client(settings), _since(args.since), set()
    while True:
        data = client.get("/api/alerts", since=since, limit=200)
        items = data.get("items", data) if isinstance(data, dict) else data
        for a in reversed(items or []):  # the API answers newest first; print oldest first
            key = (a.get("simulation_id"), a.get("problem"), a.get("at"))
            if key not in seen:
                seen.add(key)
                print(alert_line(a), flush=True)
            since = max(since, str(a.get("at") or since), key=_instant)
        if not args.follow:
            if not seen:
                print(f"no new diagnosis of your runs since {since[:19]}")
            return 0
        time.sleep(args.interval)


def _instant(text: str) -> Any:
    """An ISO time as a comparable instant (offsets differ between --since and the API)."""
    from datetime import UTC, datetime

    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cmd_action(args: argparse.Namespace, settings: StackSettings) -> int:
    """Send one lifecycle command per id (all ids are checked before any is sent)."""
    ids = _ids(args.ids)
    client = _client(settings)
    for sid in ids:
        client.action(sid, args.action)
        print(f"{args.action}: {sid} (command sent)")
    return 0


def cmd_export(args: argparse.Namespace, settings: StackSettings) -> int:
    """Download a simulation's zip, with progress against the server's size estimate."""
    [sid] = _ids([args.id])
    if args.float16 and not args.full:
        raise InfraError("--float16: applies to --full exports only; add --full or drop it")
    dtype = "float16" if args.float16 else "float32"
    tail = ("-full" + ("-float16" if args.float16 else "")) if args.full else ""
    dest = args.output or Path(f"simulation-{sid}{tail}.zip")
    if dest.is_dir():
        dest = dest / f"simulation-{sid}{tail}.zip"
    if not dest.parent.is_dir():
        raise InfraError(
            f"--output: folder {dest.parent} does not exist; create it or pick another"
        )
    client = _client(settings)
    sizes = client.get(f"/api/simulations/{sid}/export/estimate")
    expected = sizes["full_bytes"][dtype] if args.full else sizes["summary_bytes"]
    if args.full:
        print(f"full export of {sid}: about {progress.human_bytes(expected)}", file=sys.stderr)
    query = f"?content=full&dtype={dtype}" if args.full else ""
    with progress.transfer("downloaded", dest.name) as shown:
        client.download(
            f"/api/simulations/{sid}/export{query}",
            dest,
            on_start=lambda size: shown.start(size or expected),
            on_read=shown.advance,
        )
    print(f"saved {dest} ({dest.stat().st_size} bytes)")
    return 0


def cmd_db_status(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print the database status report (text, or JSON with --json)."""
    from infra import dbstatus

    if args.top < 0:
        raise InfraError("--top: must be 0 (all) or more")
    status = dbstatus.collect(database_url(settings))
    if args.json:
        print(json.dumps(status.as_json(args.top), indent=2))
    else:
        print(dbstatus.render(status, args.by, args.top))
    return 0


def database_url(settings: StackSettings) -> str:
    """DATABASE_URL, else the local stack's embedded PostgreSQL once `nntracker up` made it
    (asking for its URL before would create its password file)."""
    if settings.database_url:
        return settings.database_url
    from infra import postgres

    if not (settings.nnt_home / "pg.password").exists():
        raise InfraError(
            f"no database: DATABASE_URL is unset and the local stack has no PostgreSQL in "
            f"{settings.nnt_home} yet; set DATABASE_URL, or start it with `nntracker up`"
        )
    return postgres.url(settings.nnt_home, settings.nnt_pg_port)


def _database_env() -> dict[str, str]:
    """The environment with DATABASE_URL pointing at the embedded server when unset."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        from infra import postgres

        settings = settings_mod.load()
        env["DATABASE_URL"] = postgres.url(settings.nnt_home, settings.nnt_pg_port)
    return env


def _django(
    args: list[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A Django management command; secrets go on `stdin`, never in `args` (`ps` shows them)."""
    return subprocess.run(
        [sys.executable, "-m", "web", "manage", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=stdin,
        env={**_database_env(), **(env or {})},
    )


def _manage(rest: list[str]) -> int:
    """Run a Django management command with the stack's database settings."""
    return subprocess.call(
        [sys.executable, "-m", "web", "manage", *rest], cwd=ROOT, env=_database_env()
    )


if __name__ == "__main__":
    sys.exit(main())
