"""The MLflow Project's batch stage: score a portfolio of applicants on Spark with a registered model.

``mlflow run . -e batch_score -P input=portfolio.csv -P output=scores.parquet`` reads a CSV or
Parquet portfolio, scores it with ``mlflow.pyfunc.spark_udf`` (the very pyfunc the scoring server
serves, with its own checks) and writes Parquet: every input column as it was read, then every
output column of the model's signature (``reasons`` as an array of structs), so the scores join
back to the portfolio by any id it carries. Spark runs locally unless ``SPARK_MASTER`` (or
``--master``) names a cluster, or the job was started by ``spark-submit``, which then decides.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import mlflow.artifacts
import mlflow.pyfunc
from mlflow.models import Model
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, DoubleType, StringType, StructField, StructType

DEFAULT_MODEL_URI = "models:/credit-score@champion"
DEFAULT_MASTER = "local[*]"
APP_NAME = "credit-score-batch-score"
FORMATS = ("auto", "csv", "parquet")
ENV_MANAGERS = ("local", "uv", "virtualenv", "conda")
# NB: the scores live in this struct column only between the UDF and the final select.
_RESULT = "__credit_score_result"


def _echo(message: str) -> None:
    click.echo(f"[batch_score] {message}")


@dataclass(frozen=True)
class ScoringModel:
    """A local copy of the model to score with, and what its MLmodel says it takes and returns."""

    path: str
    run_id: str
    features: tuple[dict[str, Any], ...]
    outputs: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        return [str(f["name"]) for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [str(f["name"]) for f in self.features if f["kind"] != "category"]


def load_scoring_model(model_uri: str, dst: Path) -> ScoringModel:
    """Download ``model_uri`` once (an alias is resolved once) and read its contract from its MLmodel:
    the applicant fields it recorded and the output columns of its signature."""
    path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dst))
    model = Model.load(path)
    if model.signature is None or model.signature.outputs is None:
        raise click.ClickException(f"{model_uri} has no output signature to build the Spark result from")
    features = (model.metadata or {}).get("features")
    if not features:
        raise click.ClickException(f"{model_uri} does not record its applicant features (MLmodel metadata)")
    outputs = tuple(str(name) for name in model.signature.outputs.input_names())
    return ScoringModel(path, str(model.run_id), tuple(features), outputs)


def spark_session(master: str | None) -> SparkSession:
    """The job's session: ``master`` if given, else spark-submit's, else local Spark on every core.

    NB: a local session binds the driver to 127.0.0.1 and turns the web UI off (it would listen on
    every interface); its Python workers run this interpreter, which has the model's packages.
    """
    started_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if master is None and not started_by_spark_submit:
        master = DEFAULT_MASTER
    builder = SparkSession.builder.appName(APP_NAME).config("spark.ui.showConsoleProgress", "true")
    if master is not None:
        builder = builder.master(master)
    if master is not None and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = (
            builder.config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
        )
    return builder.getOrCreate()


def input_format(path: str, requested: str) -> str:
    """``csv`` or ``parquet``: as requested, else by the path's suffix or a local folder's files."""
    if requested != "auto":
        return requested
    name = path.rstrip("/").lower()
    for fmt, suffixes in (("csv", (".csv", ".csv.gz")), ("parquet", (".parquet", ".pq"))):
        if name.endswith(suffixes):
            return fmt
    folder = Path(path)
    if folder.is_dir():
        for fmt, pattern in (("parquet", "*.parquet"), ("csv", "*.csv")):
            if any(folder.glob(pattern)):
                return fmt
    raise click.UsageError(f"cannot tell whether {path} is CSV or Parquet: set --input-format")


def read_portfolio(spark: SparkSession, path: str, fmt: str, model: ScoringModel) -> DataFrame:
    """The portfolio as Spark reads it; a CSV's numeric applicant fields as doubles, the rest as text.

    NB: a CSV is read with an explicit schema, not inferSchema: inference would turn an id such as
    ``000123`` into the number 123. Numeric fields are read as double, integers included, so that
    ``35.5`` reaches the model intact and is refused as an age rather than truncated.
    """
    if fmt == "parquet":
        return spark.read.parquet(path)
    header = spark.read.option("header", True).csv(path).columns
    numeric = set(model.numeric_features)
    schema = StructType(
        [StructField(name, DoubleType() if name in numeric else StringType()) for name in header]
    )
    return spark.read.option("header", True).schema(schema).csv(path)


def _model_input(frame: DataFrame, name: str) -> Column:
    """One applicant field as the UDF gets it: as read, but decimals as doubles (pandas has no decimal)."""
    column = frame[name]
    if isinstance(frame.schema[name].dataType, DecimalType):
        column = column.cast("double")
    return column.alias(name)


def spread(spark: SparkSession, frame: DataFrame) -> DataFrame:
    """``frame`` evenly over at least as many partitions as Spark has cores, rows in the file's order.

    NB: scoring costs far more than reading and shuffling, and a file split by bytes can hold all
    its rows in one partition (pyarrow writes up to a million rows in one row group, which Spark
    cannot split), which one core would score alone. A range repartition on a row number spreads
    the rows evenly; sorting within partitions on it keeps the order they had.
    """
    partitions = max(frame.rdd.getNumPartitions(), spark.sparkContext.defaultParallelism)
    row = "__credit_score_row"
    numbered = frame.withColumn(row, F.monotonically_increasing_id())
    return numbered.repartitionByRange(partitions, row).sortWithinPartitions(row).drop(row)


def score(spark: SparkSession, frame: DataFrame, model: ScoringModel, env_manager: str) -> DataFrame:
    """Every input column, then every output column of the model, one row per applicant.

    NB: ``spark_udf`` is given no ``result_type``: MLflow derives it from the model's output
    signature, a struct of every output column (``reasons`` an array of structs), so the columns
    are written down nowhere here.
    """
    missing = [name for name in model.feature_names if name not in frame.columns]
    if missing:
        raise click.ClickException(f"the portfolio lacks applicant fields: {', '.join(missing)}")
    clashing = [name for name in model.outputs if name in frame.columns]
    if clashing:
        raise click.ClickException(
            f"the portfolio already has columns named like the scores: {', '.join(clashing)}; "
            "drop or rename them"
        )
    udf = mlflow.pyfunc.spark_udf(spark, model.path, env_manager=env_manager)
    applicant = F.struct(*(_model_input(frame, name) for name in model.feature_names))
    with_scores = spread(spark, frame).withColumn(_RESULT, udf(applicant))
    result_type = with_scores.schema[_RESULT].dataType
    if not isinstance(result_type, StructType) or tuple(result_type.fieldNames()) != model.outputs:
        raise click.ClickException(
            f"spark_udf would return {result_type.simpleString()}, not the model's outputs"
        )
    return with_scores.select(
        *(with_scores[name] for name in frame.columns),
        *(F.col(_RESULT).getField(name).alias(name) for name in model.outputs),
    )


def write_parquet(spark: SparkSession, scored: DataFrame, output_path: str) -> None:
    """Write ``scored`` to a new Parquet folder; a failed job leaves nothing behind, and never overwrites.

    NB: Spark leaves the folder it created when a job fails (a model refusing a row fails it), and
    a second run would then refuse the path; it is removed through Hadoop's file system API, which
    knows every URI scheme the cluster does.
    """
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    path = jvm.org.apache.hadoop.fs.Path(output_path)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.exists(path):
        raise click.ClickException(
            f"{output_path} exists already: choose a new output (nothing is overwritten)"
        )
    try:
        scored.write.mode("errorifexists").parquet(output_path)
    except Exception as exc:
        fs.delete(path, True)
        raise click.ClickException(
            f"scoring failed and nothing was written to {output_path}: {type(exc).__name__}; when the "
            "model refused an applicant, its message above names the field and the rule (its row "
            "numbers count within one batch of the portfolio)"
        ) from exc


@dataclass(frozen=True)
class Summary:
    """What one batch job did, as it prints and logs it."""

    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run(
    input_path: str,
    output_path: str,
    model_uri: str = DEFAULT_MODEL_URI,
    master: str | None = None,
    fmt: str = "auto",
    env_manager: str = "local",
) -> Summary:
    """Read, score and write one portfolio; the output must not exist yet (nothing is overwritten)."""
    fmt = input_format(input_path, fmt)
    spark = spark_session(master)
    try:
        _echo(f"Spark {spark.version} on {spark.sparkContext.master}")
        with tempfile.TemporaryDirectory(prefix="credit-score-model-") as tmp:
            model = load_scoring_model(model_uri, Path(tmp))
            _echo(f"model {model_uri} (run {model.run_id}): {', '.join(model.outputs)}")
            frame = read_portfolio(spark, input_path, fmt, model)
            scored = score(spark, frame, model, env_manager)
            _echo(f"scoring {input_path} ({fmt}, {len(frame.columns)} columns) into {output_path}")
            started = time.perf_counter()
            write_parquet(spark, scored, output_path)
            seconds = time.perf_counter() - started
        rows = spark.read.parquet(output_path).count()
    finally:
        spark.stop()
    summary = Summary(rows, seconds)
    _echo(f"wrote {rows:,} scored rows in {seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)")
    if os.environ.get("MLFLOW_RUN_ID"):
        # NB: under `mlflow run` the job has a run of its own: record what scored what.
        mlflow.log_params({"model_uri": model_uri, "model_run_id": model.run_id, "input": input_path})
        mlflow.log_params({"output": output_path, "spark_master": master or "spark-submit"})
        mlflow.log_metrics({"rows": rows, "seconds": seconds, "rows_per_second": summary.rows_per_second})
    return summary


@click.command(help="Score a CSV or Parquet portfolio on Spark and write the scores as Parquet.")
@click.option("--input", "input_path", required=True, help="CSV (with a header) or Parquet: file or folder.")
@click.option("--output", "output_path", required=True, help="Parquet folder to write (must not exist).")
@click.option("--model-uri", default=DEFAULT_MODEL_URI, show_default=True)
@click.option(
    "--master",
    envvar="SPARK_MASTER",
    default=None,
    help=f"Spark master URL [env SPARK_MASTER; default: spark-submit's, else {DEFAULT_MASTER}]",
)
@click.option("--input-format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True)
@click.option(
    "--env-manager",
    type=click.Choice(ENV_MANAGERS),
    default="local",
    show_default=True,
    help="How executors get the model's packages: local assumes they have this environment's.",
)
def main(
    input_path: str, output_path: str, model_uri: str, master: str | None, fmt: str, env_manager: str
) -> None:
    run(input_path, output_path, model_uri, master, fmt, env_manager)


if __name__ == "__main__":
    main()
