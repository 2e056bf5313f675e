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
    "invite": "joining.cli.run_invite",
    "requests": "joining.cli.run_requests",
    "doctor": "identityhub.oidc.doctor.run_doctor",
}


class Command(BaseCommand):
    help = "Identity Hub operations: check, plan, apply, export, schema, sync, claims, keys, invite, requests, doctor"
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
        p = sub.add_parser("invite", help="invite someone to a household: prints the invitation URL")
        p.add_argument("email")
        p.add_argument("--household", required=True, help="household id")
        p.add_argument("--name", default="", help="their name")
        p.add_argument("--role", default="member", help="member (default) or admin")
        p.add_argument("--nas", help="NAS id: the NAS account, with --account or --create-account")
        p.add_argument("--account", help="an existing DSM account on --nas to link")
        p.add_argument("--create-account", help="a DSM account the hub creates on --nas now")
        p.add_argument("--expires", default="7d", help="how long the link works: 7d (default), 36h, 90m")
        p = sub.add_parser("requests", help="open access requests; approve or decline one")
        decide = p.add_subparsers(dest="action")
        q = decide.add_parser("approve", help="let them in (a NAS-bound app: with a DSM account)")
        q.add_argument("id", help="the request's id (first column of `hub requests`)")
        q.add_argument("--account", help="an existing DSM account on the app's NAS to link")
        q.add_argument("--create-account", help="a DSM account the hub creates on the app's NAS now")
        q = decide.add_parser("decline", help="turn the request down")
        q.add_argument("id", help="the request's id")
        p = sub.add_parser("doctor", help="check the deployment end to end: one ok/warn/fail line per check")
        p.add_argument("--budget", type=float, default=None, help="seconds for the whole run (default 60)")

    def handle(self, *args, **options) -> None:
        handler = import_string(HANDLERS[options["subcommand"]])
        status = handler(self, options)
        if status:
            sys.exit(status)
