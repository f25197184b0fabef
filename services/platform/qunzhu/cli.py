"""`python -m qunzhu` / `qunzhu`: run embedded, serve one service, migrate, make migrations, run the demo, mint a
local member token, print the OpenAPI document."""

from __future__ import annotations

import argparse
import os
import sys

from qunzhu.services import DEFAULT_PORTS, SERVICE_NAMES, entry


def _migrate(args: argparse.Namespace) -> None:
    from qunzhu_common.db.migrate import upgrade_head

    names = SERVICE_NAMES if args.service == "all" else (args.service,)
    for name in names:
        svc = entry(name)
        settings = svc.settings()
        upgrade_head(svc.app_module.MIGRATIONS_DIR, settings.database_url)
        print(f"{name}: migrated {settings.database_url.split('@')[-1]}")


def _makemigration(args: argparse.Namespace) -> None:
    from alembic import command

    from qunzhu_common.db.migrate import alembic_config, upgrade_head

    svc = entry(args.service)
    settings = svc.settings()
    upgrade_head(svc.app_module.MIGRATIONS_DIR, settings.database_url)
    config = alembic_config(svc.app_module.MIGRATIONS_DIR, settings.database_url)
    command.revision(config, message=args.message, autogenerate=True)


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from qunzhu_common.httpserver import HeaderTimeoutProtocol
    from qunzhu_common.process import tune_gc

    svc = entry(args.service)
    port = args.port or DEFAULT_PORTS[args.service]
    app = svc.create_app(svc.settings())
    tune_gc()
    if not args.reuse_port:
        uvicorn.run(app, host=args.host, port=port, log_level=args.log_level, access_log=False,
                    http=HeaderTimeoutProtocol)
        return
    # Replicas on one host and port: each process binds its own socket with SO_REUSEPORT and the kernel
    # spreads new connections over them (deploy/README.md, "Several processes on one host").
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, port))
    sock.set_inheritable(True)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, http=HeaderTimeoutProtocol)
    uvicorn.Server(config).run(sockets=[sock])


def _run(args: argparse.Namespace) -> None:
    from qunzhu.embedded import run_embedded
    from qunzhu_common.process import tune_gc

    tune_gc()
    run_embedded(host=args.host, port=args.port, data_dir=args.data_dir)


def _demo(args: argparse.Namespace) -> None:
    import asyncio

    from rich.console import Console

    from qunzhu.simulator.demo import run_demo
    from qunzhu.simulator.drive import DriveError
    from qunzhu.simulator.generate import SimConfig

    config = SimConfig(groups=args.groups, members_per_group=args.members, days=args.days, messages=args.messages,
                       seed=args.seed)
    console = Console()
    try:
        asyncio.run(run_demo(config, gateway=args.gateway, api_key=args.api_key, stripe_secret=args.stripe_secret,
                             console=console))
    except DriveError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        sys.exit(1)


def _token(args: argparse.Namespace) -> None:
    from qunzhu.devtoken import TokenRefused, mint

    try:
        minted = mint(person=args.person, data_dir=args.data_dir, community_id=args.community)
    except TokenRefused as exc:
        print(f"qunzhu token: {exc}", file=sys.stderr)
        sys.exit(2)
    scope = f"community {minted.community_id} only" if minted.community_id else "person-wide"
    # The token alone on stdout (TOKEN=$(python -m qunzhu token ...)); the explanation on stderr.
    print(minted.token)
    print(f"member token for {minted.subject} ({scope}), valid {minted.expires_in} s; use it as\n"
          f"  curl -H \"Authorization: Bearer $TOKEN\" ...", file=sys.stderr)


def _openapi(args: argparse.Namespace) -> None:
    from qunzhu.apidoc import document, dumps

    text = dumps(document())
    if args.output == "-":
        sys.stdout.buffer.write(text.encode())
        sys.stdout.flush()
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qunzhu", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="embedded mode: every service in one process (SQLite, in-process bus)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--data-dir", default="data")
    run.set_defaults(func=_run)

    serve = sub.add_parser("serve", help="distributed mode: one service as its own process")
    serve.add_argument("service", choices=SERVICE_NAMES)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--reuse-port", action="store_true",
                       help="bind with SO_REUSEPORT: several processes of a service share one port (Linux)")
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="alembic upgrade head for one service or all")
    migrate.add_argument("service", choices=(*SERVICE_NAMES, "all"))
    migrate.set_defaults(func=_migrate)

    make = sub.add_parser("makemigration", help="autogenerate a new alembic revision for a service")
    make.add_argument("service", choices=SERVICE_NAMES)
    make.add_argument("-m", "--message", required=True)
    make.set_defaults(func=_makemigration)

    demo = sub.add_parser("demo", help="simulate a community through the gateway's webhooks and print a report")
    demo.add_argument("--groups", type=int, default=3)
    demo.add_argument("--members", type=int, default=200, help="members per group")
    demo.add_argument("--days", type=int, default=14, help="simulated days")
    demo.add_argument("--messages", type=int, default=1500, help="chat messages over the period")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--gateway", default=None, help="a running gateway (e.g. make up's) instead of embedded mode")
    demo.add_argument("--api-key", default=os.environ.get("GATEWAY_ADMIN_API_KEY", ""),
                      help="with --gateway: its GATEWAY_ADMIN_API_KEY")
    demo.add_argument("--stripe-secret", default="", help="with --gateway: one of its GATEWAY_STRIPE_WEBHOOK_SECRETS")
    demo.set_defaults(func=_demo)

    token = sub.add_parser(
        "token", help="development: a member token from embedded mode's key file (refused when the gateway's "
        "keys come from the environment)")
    token.add_argument("--person", required=True, help="who the token is for, <platform>:<user id>, e.g. telegram:42")
    token.add_argument("--community", default=None,
                       help="scope the token to this community (as a one-time code login does); default: person-wide")
    token.add_argument("--data-dir", default="data", help="embedded mode's data directory (holds gateway.key)")
    token.set_defaults(func=_token)

    openapi = sub.add_parser(
        "openapi", help="print the platform's OpenAPI document (what embedded mode serves at /openapi.json)")
    openapi.add_argument("--output", "-o", default="-", help="write to this file instead of stdout")
    openapi.set_defaults(func=_openapi)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
