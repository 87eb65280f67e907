"""``python -m scripts.bench_records``: how long verifying the decision records' hash chain takes.

Fills a fresh database with ``--records`` decision records through the store itself (groups of
``--group`` records, each one transaction, as batch requests write them), then times
``DecisionStore.verify()`` over all of them: reading every row, recomputing every hash and every
link. SQLite in a temporary folder by default; ``--database-url`` (or BENCH_RECORDS_URL) names an
empty PostgreSQL database instead. It reports numbers and never fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from uuid import uuid4

from facade.records.record import DecisionDraft
from facade.records.store import DecisionStore
from model_code.reasons import REASONS
from model_code.schema import EXAMPLE_APPLICANTS, SCHEMA_VERSION


def drafts(n: int, rng: random.Random) -> list[DecisionDraft]:
    """``n`` decisions shaped like the API's: the README applicants varied, four reasons each."""
    made = []
    for _ in range(n):
        risk = rng.random()
        application = dict(EXAMPLE_APPLICANTS["rejected" if risk >= 0.5 else "approved"])
        application["income"] = round(rng.uniform(10_000, 200_000), 2)
        reasons = [
            {"code": r.code, "description": r.description, "contribution": rng.random() / 10}
            for r in rng.sample(REASONS, 4)
        ]
        reasons.sort(key=lambda reason: -float(reason["contribution"]))  # type: ignore[arg-type]
        made.append(
            DecisionDraft(
                application_id=uuid4(),
                request_id=uuid4().hex,
                client="api-key",
                model_name="credit-score",
                model_version="1",
                model_run_id=uuid4().hex,
                prediction="REJECTED" if risk >= 0.5 else "APPROVED",
                approval_probability=1 - risk,
                rejection_probability=risk,
                risk_score=risk,
                confidence=max(risk, 1 - risk),
                credit_score=rng.randint(300, 850),
                decision_threshold=0.5,
                reasons=reasons,
                application=application,
                schema_version=SCHEMA_VERSION,
            )
        )
    return made


async def measure(url: str, records: int, group: int) -> dict[str, float]:
    store = DecisionStore(url, write_timeout=30.0)
    await store.start()
    rng = random.Random(11)
    try:
        written = 0
        started = time.perf_counter()
        while written < records:
            batch = drafts(min(group, records - written), rng)
            await store.append(batch)
            written += len(batch)
        append_seconds = time.perf_counter() - started
        started = time.perf_counter()
        verification = await store.verify()
        verify_seconds = time.perf_counter() - started
    finally:
        await store.close()
    if not verification.ok:
        raise SystemExit(f"the chain does not verify: {verification.first_broken}")
    return {
        "records": verification.records,
        "append_seconds": append_seconds,
        "verify_seconds": verify_seconds,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--group", type=int, default=1000, help="records per append (one transaction)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_RECORDS_URL"))
    args = parser.parse_args(argv)
    folder = None
    url = args.database_url
    if url is None:
        folder = Path(tempfile.mkdtemp(prefix="credit-score-records-bench-"))
        url = f"sqlite:///{folder / 'decisions.db'}"
    try:
        result = asyncio.run(measure(url, args.records, args.group))
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    backend = "SQLite WAL" if folder is not None else "the given database"
    print(  # noqa: T201 - a console report
        f"{result['records']:,.0f} decision records ({backend}): written in {result['append_seconds']:.1f} s "
        f"({result['records'] / result['append_seconds']:,.0f} records/s in groups of {args.group}); "
        f"chain verified in {result['verify_seconds']:.2f} s "
        f"({result['records'] / result['verify_seconds']:,.0f} records/s)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    main()
