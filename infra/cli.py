"""`nntracker`: run the local stack and drive experiments from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from infra import settings as settings_mod
from infra.client import ApiClient, default_client
from infra.settings import InfraError, StackSettings

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nntracker", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole local stack in the foreground (Ctrl-C stops it)")
    up.add_argument("--demo", action="store_true", help="submit the demo experiment once healthy")
    up.set_defaults(func=cmd_up)
    sub.add_parser("demo", help="create the demo user and submit the demo experiment").set_defaults(func=cmd_demo)
    login = sub.add_parser("login", help="get an API token and keep it in $NNT_HOME/token")
    login.add_argument("username")
    login.add_argument("--password", default=os.environ.get("NNT_PASSWORD"))
    login.set_defaults(func=cmd_login)
    submit = sub.add_parser("submit", help="submit an experiment (appendix-A config, model, datasets)")
    submit.add_argument("config", type=Path)
    submit.add_argument("--model", type=Path, required=True)
    for name in ("train", "test", "val"):
        submit.add_argument(f"--{name}", type=Path, help=f"{name} dataset file")
    submit.set_defaults(func=cmd_submit)
    ls = sub.add_parser("ls", help="list simulations")
    ls.add_argument("--status")
    ls.add_argument("--tag")
    ls.set_defaults(func=cmd_ls)
    for action, help_text in (("pause", "freeze"), ("resume", "continue"), ("stop", "checkpoint and stop"),
                              ("rm", "delete with all its data")):
        a = sub.add_parser(action, help=f"{help_text} simulations")
        a.add_argument("ids", nargs="+")
        a.set_defaults(func=cmd_action, action="delete" if action == "rm" else action)
    export = sub.add_parser("export", help="download a simulation's zip")
    export.add_argument("id")
    export.add_argument("-o", "--output", type=Path)
    export.set_defaults(func=cmd_export)
    manage = sub.add_parser("manage", help="Django management commands")
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    return p


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


def demo_submit(settings: StackSettings, env: dict[str, str] | None = None) -> str:
    """Ensure the demo user, submit the demo experiment unless it exists; returns a message."""
    result = _django(["ensure_user", "--username", DEMO_USER, "--password", DEMO_PASSWORD], env)
    if result.returncode != 0:
        raise InfraError(f"could not create the demo user: {result.stderr.strip()[-500:]}")
    client = default_client(settings.nnt_web_port)
    client.login(DEMO_USER, DEMO_PASSWORD)
    existing = client.get("/api/simulations", tag="demo")
    items = existing.get("items", existing) if isinstance(existing, dict) else existing
    if not items:
        from trainer.demo import write_demo

        folder = Path(tempfile.mkdtemp(prefix="nnt-demo-"))
        config, model, paths = write_demo(folder)
        model_path = folder / "model.json"
        model_path.write_text(json.dumps(model))
        created = client.submit(config, model_path, {k: Path(v) for k, v in paths.items() if v})
        first = created["simulations"][0]
    else:
        first = items[0]["id"]
    url = f"{client.base}/simulations/{first}/"
    from infra.stack import paint

    return f"{paint('demo ready:', 1)} open {url}  (login: {DEMO_USER} / {DEMO_PASSWORD})"


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
    path.write_text(token)
    path.chmod(0o600)
    print(f"logged in as {args.username}; token saved to {path}")
    return 0


def cmd_submit(args: argparse.Namespace, settings: StackSettings) -> int:
    """Submit an experiment from files."""
    try:
        config = json.loads(args.config.read_text())
    except (OSError, ValueError) as exc:
        raise InfraError(f"config {args.config}: {exc}") from exc
    datasets = {k: getattr(args, k) for k in ("train", "test", "val") if getattr(args, k)}
    created = _client(settings).submit(config, args.model, datasets)
    print(f"experiment {created['experiment_id']}: {len(created['simulations'])} simulation(s)")
    for sid in created["simulations"]:
        print(f"  {sid}")
    return 0


def cmd_ls(args: argparse.Namespace, settings: StackSettings) -> int:
    """Print simulations as a table."""
    data = _client(settings).get("/api/simulations", status=args.status, tag=args.tag)
    items = data.get("items", data) if isinstance(data, dict) else data
    if not items:
        print("no simulations yet: `nntracker submit` or `nntracker demo` creates some")
        return 0
    print(f"{'ID':36}  {'STATUS':9}  {'EPOCH':>9}  NAME")
    for sim in items:
        print(f"{sim['id']:36}  {sim['status']:9}  {sim['epoch']:>4}/{sim['total_epochs']:<4}  {sim['name']}")
    return 0


def cmd_action(args: argparse.Namespace, settings: StackSettings) -> int:
    """Send one lifecycle command per id."""
    client = _client(settings)
    for sid in args.ids:
        client.action(sid, args.action)
        print(f"{args.action}: {sid} (command sent)")
    return 0


def cmd_export(args: argparse.Namespace, settings: StackSettings) -> int:
    """Download everything recorded for a simulation."""
    dest = args.output or Path(f"simulation-{args.id}.zip")
    _client(settings).download(f"/api/simulations/{args.id}/export", dest)
    print(f"saved {dest} ({dest.stat().st_size} bytes)")
    return 0


def _database_env() -> dict[str, str]:
    """The environment with DATABASE_URL pointing at the embedded server when unset."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        from infra import postgres

        settings = settings_mod.load()
        env["DATABASE_URL"] = postgres.url(settings.nnt_home, settings.nnt_pg_port)
    return env


def _django(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "web", "manage", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**_database_env(), **(env or {})})


def _manage(rest: list[str]) -> int:
    """Run a Django management command with the stack's database settings."""
    return subprocess.call([sys.executable, "-m", "web", "manage", *rest], cwd=ROOT, env=_database_env())


if __name__ == "__main__":
    sys.exit(main())
