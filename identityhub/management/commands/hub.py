"""`python manage.py hub …`: the operator's commands (contract: ../shared/DESIGN.md, "Commands").

Each subcommand is a function `run(command, options) -> int` in the app that owns the work; this
module only parses arguments and turns the returned status into the process exit status.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import import_string

HANDLERS = {
    "check": "identityhub.config.cli.run_check",
    "plan": "identityhub.config.cli.run_plan",
    "apply": "identityhub.config.cli.run_apply",
    "export": "identityhub.config.cli.run_export",
    "schema": "identityhub.config.cli.run_schema",
    "sync": "synology.cli.run_sync",
    "claims": "identityhub.oidc.cli.run_claims",
    "keys": "identityhub.oidc.cli.run_keys",
}


class Command(BaseCommand):
    help = "Identity Hub operations: check, plan, apply, export, schema, sync, claims, keys"
    requires_system_checks: list = []

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        for name in ("check", "plan", "apply"):
            p = sub.add_parser(name)
            p.add_argument("file", nargs="?", help="config file (default: HUB_CONFIG)")
            if name == "plan":
                p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when there are changes")
            if name in ("plan", "apply"):
                p.add_argument("--prune", action="store_true", help="remove managed objects no longer declared")
                p.add_argument("--adopt", action="store_true", help="take over admin-made objects with declared ids")
        sub.add_parser("export")
        sub.add_parser("schema")
        p = sub.add_parser("sync")
        p.add_argument("nas", nargs="*", help="NAS ids (default: every enabled NAS)")
        p = sub.add_parser("claims")
        p.add_argument("email")
        p.add_argument("client_id")
        p.add_argument("--scope", help="space-separated scopes (default: every scope the client may request)")
        p = sub.add_parser("keys")
        p.add_argument("action", choices=["rotate", "list"])

    def handle(self, *args, **options) -> None:
        handler = import_string(HANDLERS[options["subcommand"]])
        status = handler(self, options)
        if status:
            sys.exit(status)
