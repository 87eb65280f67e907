"""``make bench-spark``: batch scoring on Spark against in-process predict of the same applicants.

Trains the default model into a throwaway SQLite store (or scores a tracking server's champion),
writes a portfolio of generated applicants (an application id beside the fields) as Parquet, then
measures two ways of scoring every row: ``training.batch_score`` on local Spark (``--master``,
``local[2]`` by default: read, spark_udf, write Parquet) and the pyfunc's ``predict`` in this one
process on the same rows, in chunks the size of Spark's Arrow batches (the fast path). It prints
rows/s and their ratio; it measures, it never passes or fails on a number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from scripts import commands

ARROW_BATCH_ROWS = 10_000  # NB: Spark's spark.sql.execution.arrow.maxRecordsPerBatch default


@dataclass
class SparkBench:
    """Rows/s of one portfolio scored on Spark and in-process."""

    rows: int
    master: str
    spark_seconds: float
    spark_wall_seconds: float
    in_process_seconds: tuple[float, float]
    chunk_rows: int
    load_average: dict[str, float]

    @property
    def spark_rows_per_second(self) -> float:
        return self.rows / self.spark_seconds

    @property
    def spark_wall_rows_per_second(self) -> float:
        return self.rows / self.spark_wall_seconds

    @property
    def in_process_rows_per_second(self) -> float:
        """Of the two in-process runs (before and after Spark), the mean time."""
        return self.rows / statistics.mean(self.in_process_seconds)

    def table(self) -> str:
        fast = self.in_process_rows_per_second
        lines = [
            "",
            f"{self.rows:,} applications{'':<32}{'rows/s':>12}{'/ in-process':>14}",
            f"{'Spark ' + self.master + ': read, score, write Parquet':<46}"
            f"{self.spark_rows_per_second:>12,.0f}{self.spark_rows_per_second / fast:>14.2f}",
            f"{'Spark ' + self.master + ': the same, with session start':<46}"
            f"{self.spark_wall_rows_per_second:>12,.0f}{self.spark_wall_rows_per_second / fast:>14.2f}",
            f"{f'in-process predict, {self.chunk_rows:,}-row chunks, 1 core':<46}{fast:>12,.0f}{1.0:>14.2f}",
            "  in-process before / after Spark: "
            + " / ".join(f"{self.rows / s:,.0f}" for s in self.in_process_seconds)
            + " rows/s",
            "  1-minute load average at the start of each: "
            + ", ".join(f"{k} {v:.1f}" for k, v in self.load_average.items())
            + f" (on {os.cpu_count()} cores: other work shares them)",
        ]
        return "\n".join(lines)


def train(root: Path, n_estimators: int, max_depth: int) -> str:
    """`mlflow run .` of the default model into a SQLite store under ``root``; its tracking URI."""
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    subprocess.run(
        commands.project_run(f"n_estimators={n_estimators}", f"max_depth={max_depth}"),
        cwd=root,
        env=commands.child_env(MLFLOW_TRACKING_URI=tracking_uri),
        check=True,
        capture_output=True,
    )
    return tracking_uri


def in_process_seconds(model_uri: str, portfolio: Path, chunk_rows: int) -> float:
    """Seconds for the pyfunc's predict over every row of ``portfolio``, read into memory first."""
    import mlflow.pyfunc
    import pandas as pd

    from model_code.schema import FEATURE_NAMES

    model = mlflow.pyfunc.load_model(model_uri)
    applicants = pd.read_parquet(portfolio, columns=list(FEATURE_NAMES))
    model.predict(applicants.head(chunk_rows))  # warm-up: first-call costs are not throughput
    started = time.perf_counter()
    for start in range(0, len(applicants), chunk_rows):
        model.predict(applicants.iloc[start : start + chunk_rows])
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> SparkBench:
    from training import batch_score
    from training.data import TARGET, generate_applicants

    root = Path(tempfile.mkdtemp(prefix="credit-score-bench-spark-"))
    try:
        tracking_uri = args.tracking_uri or train(root, args.n_estimators, args.max_depth)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        model_uri = f"models:/{args.model_name}@champion"

        portfolio = generate_applicants(args.rows, seed=2026).drop(columns=[TARGET])
        portfolio.insert(0, "application_id", [f"A{i:09d}" for i in range(args.rows)])
        portfolio.to_parquet(root / "portfolio.parquet", index=False)
        del portfolio

        # NB: in-process before and after Spark, so that a change in the machine's load shows.
        load = {"in-process before": os.getloadavg()[0]}
        before = in_process_seconds(model_uri, root / "portfolio.parquet", args.chunk_rows)
        load["spark"] = os.getloadavg()[0]
        started = time.perf_counter()
        summary = batch_score.run(
            str(root / "portfolio.parquet"), str(root / "scores.parquet"), model_uri, master=args.master
        )
        wall = time.perf_counter() - started
        load["in-process after"] = os.getloadavg()[0]
        after = in_process_seconds(model_uri, root / "portfolio.parquet", args.chunk_rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return SparkBench(
        summary.rows, args.master, summary.seconds, wall, (before, after), args.chunk_rows, load
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="applications in the portfolio")
    parser.add_argument("--master", default="local[2]", help="Spark master of the batch job")
    parser.add_argument("--chunk-rows", type=int, default=ARROW_BATCH_ROWS, help="rows per in-process call")
    parser.add_argument(
        "--tracking-uri", default=None, help="score this tracking server's champion instead of training"
    )
    parser.add_argument("--model-name", default="credit-score")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=12)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> SparkBench:
    args = parse_args(argv)
    bench = run(args)
    print(bench.table(), flush=True)  # noqa: T201 - a console report
    if args.json is not None:
        figures = {
            **asdict(bench),
            "spark_rows_per_second": bench.spark_rows_per_second,
            "in_process_rows_per_second": bench.in_process_rows_per_second,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return bench


if __name__ == "__main__":
    main()
