"""``python -m app.cli.admin``: provision robots, create operator keys, rotate, revoke and list, on the database.

This is how the first admin key is made. Secrets are printed once, to this terminal only, never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from app.auth import provisioning as admin
from app.fleet.decommission import decommission_robot
from app.model.errors import FleetError
from app.mqtt import accounts
from app.platform.migrations import apply_migrations
from app.platform.pool import create_pool
from app.platform.settings import load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli.admin", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    robot = commands.add_parser("provision-robot", help="register a robot and print its token")
    robot.add_argument("robot_id")
    robot.add_argument("--tag", action="append", default=[], help="a fleet tag (repeatable)")
    rotate = commands.add_parser("rotate-robot", help="print a new token; the old one works for the grace period")
    rotate.add_argument("robot_id")
    key = commands.add_parser("create-key", help="create an operator key and print it")
    key.add_argument("name")
    key.add_argument("--scope", action="append", required=True, help="read, stream, export, ingest, operate or admin")
    key.add_argument("--robot", action="append", default=None, help="limit the key to this robot (repeatable)")
    key.add_argument("--fleet-tag", default=None, help="limit the key to robots with this tag")
    retire = commands.add_parser("decommission-robot", help="revoke a robot's tokens and take it out of the fleet")
    retire.add_argument("robot_id")
    retire.add_argument("--delete-history", action="store_true", help="delete its readings and alerts too")
    revoke = commands.add_parser("revoke", help="revoke a credential by id")
    revoke.add_argument("credential_id", type=int)
    commands.add_parser("list", help="list every credential (never the secrets)")
    commands.add_parser(
        "write-broker-accounts",
        help="write the MQTT broker's password and ACL files from the robots' tokens (FLEET_MQTT_ACCOUNTS_DIR)",
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    await apply_migrations(settings.database.database_url)
    pool = await create_pool(settings.database)
    try:
        if args.command == "provision-robot":
            issued = await admin.provision_robot(pool, admin.NewRobot(args.robot_id, args.tag))
        elif args.command == "rotate-robot":
            issued = await admin.rotate_robot_token(pool, args.robot_id, settings.auth.rotation_grace_s)
        elif args.command == "create-key":
            new = admin.NewKey(args.name, args.scope, robot_ids=args.robot, fleet_tag=args.fleet_tag)
            issued = await admin.create_key(pool, msgspec.convert(msgspec.to_builtins(new), admin.NewKey))
        elif args.command == "decommission-robot":
            await decommission_robot(pool, args.robot_id, args.delete_history)
            print(f"decommissioned robot {args.robot_id}" + (", its history deleted" if args.delete_history else ""))
            return 0
        elif args.command == "write-broker-accounts":
            if not settings.mqtt.mqtt_accounts_dir or not settings.mqtt.mqtt_secret_file:
                print("admin: set FLEET_MQTT_ACCOUNTS_DIR and FLEET_MQTT_SECRET_FILE", file=sys.stderr)
                return 2
            changed = await accounts.write_accounts(pool, settings.mqtt)
            print(f"broker accounts in {settings.mqtt.mqtt_accounts_dir}: " + ("written" if changed else "unchanged"))
            return 0
        elif args.command == "revoke":
            await admin.revoke(pool, args.credential_id)
            print(f"revoked credential {args.credential_id}")
            return 0
        else:
            for info in await admin.list_credentials(pool):
                print(msgspec.json.encode(info).decode())
            return 0
    except (FleetError, msgspec.ValidationError) as exc:
        print(f"admin: {exc}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    print(f"credential {issued.credential_id} ({issued.kind} {issued.name!r}); shown once, store it now:")
    print(issued.token)
    return 0


def main() -> None:
    sys.exit(asyncio.run(run(_parser().parse_args())))


if __name__ == "__main__":
    main()
