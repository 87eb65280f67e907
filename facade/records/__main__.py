"""``python -m facade.records``: the operator's commands on the decision records database.

``migrate`` brings the schema to the newest revision (the facade also does it on start unless
DECISIONS_MIGRATE_ON_START=false); ``purge`` deletes what is older than DECISION_RETENTION_DAYS
now (the facade also does it in the background); ``verify`` recomputes the hash chain and exits
1 when it is broken. The database is DECISIONS_DATABASE_URL, read from the environment like the
facade's other settings (never from the command line, where other users could read a password).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging.config
import sys
import time
from datetime import UTC, datetime

from facade.core.config import get_settings
from facade.core.logs import logging_config
from facade.records.store import DecisionStore


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2026-01-01T00:00:00Z")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError("give a time between 0001-01-01 and 9999-12-31 in UTC") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m facade.records", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the schema to the newest revision")
    purge = commands.add_parser("purge", help="delete the records older than the retention period")
    purge.add_argument("--days", type=int, help="retention in days (default: DECISION_RETENTION_DAYS)")
    verify = commands.add_parser("verify", help="recompute the hash chain; exit 1 when it is broken")
    verify.add_argument("--since", type=_aware, help="first time to check, ISO 8601 with an offset")
    verify.add_argument("--until", type=_aware, help="time to stop before, ISO 8601 with an offset")
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.DECISIONS_DATABASE_URL is None:
        print("DECISIONS_DATABASE_URL is not set", file=sys.stderr)  # noqa: T201 - a console program
        return 2
    store = DecisionStore(
        settings.DECISIONS_DATABASE_URL.get_secret_value(),
        write_timeout=settings.DECISION_WRITE_TIMEOUT_SECONDS,
    )
    try:
        if args.command == "migrate":
            await store.migrate()
            return 0
        if args.command == "purge":
            result = await store.purge(
                args.days if args.days is not None else settings.DECISION_RETENTION_DAYS
            )
            output = {
                "deleted": result.deleted,
                "anchor_seq": result.anchor_seq,
                "anchor_hash": result.anchor_hash,
            }
            print(json.dumps(output))  # noqa: T201
            return 0
        start = time.perf_counter()
        verification = await store.verify(args.since, args.until)
        broken = verification.first_broken
        output = {
            "ok": verification.ok,
            "records": verification.records,
            "first_broken": None
            if broken is None
            else {
                "seq": broken.seq,
                "application_id": str(broken.application_id) if broken.application_id else None,
                "problem": broken.problem,
            },
            "seconds": round(time.perf_counter() - start, 3),
        }
        print(json.dumps(output))  # noqa: T201
        return 0 if verification.ok else 1
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.config.dictConfig(logging_config(get_settings().log_level))
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
