"""Implicit-feedback ALS trained by Apache Spark MLlib (``als-spark``), served like ``als``.

When an event log outgrows one machine, training runs on an existing distributed engine:
``pyspark.ml.recommendation.ALS(implicitPrefs=True)``. Only *training* needs Spark. The
fitted user and item factors are copied into an implicit ``AlternatingLeastSquares`` shell,
so recommending, similar items, pair scores and "because you bought" run through exactly
the code of :class:`~recsys_core.models.als.ALSRecommender` (this class is a subclass), and
the saved folder has the same layout (numpy factor arrays + id maps, no pickle). Loading a
saved ``als-spark`` model needs neither pyspark nor Java.

How the data reaches Spark
--------------------------
The data layer writes the weighted users x items matrix as Parquet
(:func:`~recsys_core.interactions.write_matrix_parquet`: ``user`` and ``item`` as 32-bit
indices, ``confidence`` the event-weighted cell value, the same weighting as ``als``); Spark
reads that file. Nothing goes through a pandas frame converted in the driver. The factors
come back as Arrow batches (``DataFrame.toArrow``) straight into numpy arrays.

Settings (environment)
----------------------
``RECSYS_SPARK_MASTER``
    Master URL when the model's ``spark_master`` is not set; default ``local[*]``.
``RECSYS_SPARK_DRIVER_MEMORY``
    ``spark.driver.memory`` of a new session; default ``2g``.
``RECSYS_SPARK_EXECUTOR_MEMORY``
    ``spark.executor.memory`` (cluster runs); unset by default.
``RECSYS_SPARK_WORK_DIR``
    Folder for the exchanged Parquet files and ALS checkpoints. It must be visible to
    every executor at the same path (a shared mount) when the master is a cluster; default
    ``$RECSYS_HOME/spark-work``.

Differences from implicit's ALS
-------------------------------
Both minimise ``sum c_ui (p_ui - x_u . y_i)^2`` plus an L2 penalty, with ``p_ui = 1`` on
observed cells and confidence ``c_ui = 1`` on unobserved ones. They differ in two places:

* Confidence of an observed cell: implicit uses ``alpha * value`` (below 1 when
  ``alpha * value < 1``); Spark uses ``1 + alpha * |value|`` and gives cells with
  ``value <= 0`` preference 0. With ``confidence="implicit"`` (default) Spark is
  fed ``alpha * value - 1`` with its own alpha 1, so both engines give a cell the same
  confidence, except that Spark cannot go below 1 (such cells get ``1 + 1e-4``).
* Regularisation: implicit adds a flat ``lambda * ||x||^2`` per row; Spark's ALS-WR adds
  ``regParam * n * ||x||^2`` where ``n`` is the row's number of observed cells. No input
  transform removes that, so ``regularization`` (Spark's regParam) is tuned apart from
  implicit's (:data:`recsys_core.presets.SPARK_ALS_PARAMS`); the implicit shell only uses it
  for :meth:`explain`, which is therefore an approximation of Spark's per-row penalty.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pydantic import Field

from recsys_core.errors import EngineUnavailableError
from recsys_core.interactions import write_matrix_parquet
from recsys_core.models.als import ALSConfig, ALSRecommender
from recsys_core.models.interface import RecommenderConfig
from recsys_core.paths import recsys_home
from recsys_core.settings import lab_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: How to install the optional Spark engine (requirements-spark.txt pins a pyspark range).
PYSPARK_INSTALL: Final = "pip install -r requirements-spark.txt"
#: How to install a Java runtime for Spark on Debian/Ubuntu.
JAVA_INSTALL: Final = "apt-get install -y default-jre-headless"
#: Master URL when neither the model nor $RECSYS_SPARK_MASTER names one.
DEFAULT_MASTER: Final = "local[*]"
#: Driver memory of a new session unless $RECSYS_SPARK_DRIVER_MEMORY says otherwise.
DEFAULT_DRIVER_MEMORY: Final = "2g"

_session_lock = threading.Lock()
#: The session this module started ("current"), shared by every fit in the process.
_sessions: dict[str, SparkSession] = {}


# ---------------------------------------------------------------------- availability


def java_executable() -> str | None:
    """The ``java`` Spark would start: ``$JAVA_HOME/bin/java`` if JAVA_HOME is set, else PATH."""
    java_home = lab_settings().java_home
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def spark_unavailable_reason() -> str | None:
    """Why ``als-spark`` cannot train here (what to install), or ``None`` when it can."""
    try:
        has_pyspark = find_spec("pyspark") is not None
    except (ImportError, ValueError):  # a blocked or broken module entry
        has_pyspark = False
    if not has_pyspark:
        return (
            "the 'als-spark' model needs Apache Spark's Python package, which is not "
            f"installed: run `{PYSPARK_INSTALL}` (or use the 'als' model, which needs no Spark)"
        )
    if java_executable() is None:
        java_home = lab_settings().java_home
        where = (
            f"JAVA_HOME={java_home} has no bin/java"
            if java_home
            else "no `java` on PATH and JAVA_HOME is not set"
        )
        return (
            f"the 'als-spark' model needs a Java runtime for Spark ({where}): install one with "
            f"`{JAVA_INSTALL}` or set JAVA_HOME to a JDK/JRE 17 or newer"
        )
    return None


def spark_available() -> bool:
    """Whether pyspark and Java are both present (the Model lab offers ``als-spark`` then)."""
    return spark_unavailable_reason() is None


def require_spark() -> None:
    """Raise :class:`EngineUnavailableError` naming what to install when Spark cannot run."""
    reason = spark_unavailable_reason()
    if reason is not None:
        raise EngineUnavailableError(reason)


# ---------------------------------------------------------------------- session


def spark_master(master: str | None = None) -> str:
    """The master URL to use: ``master``, else ``$RECSYS_SPARK_MASTER``, else ``local[*]``."""
    return master or lab_settings().spark_master or DEFAULT_MASTER


def spark_work_dir() -> Path:
    """Folder for exchanged Parquet files and checkpoints (shared storage on a cluster)."""
    configured = lab_settings().spark_work_dir
    folder = Path(configured) if configured else recsys_home() / "spark-work"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def spark_session(master: str | None = None) -> SparkSession:
    """The one shared SparkSession of this process (created on first use).

    Quiet logs, no web UI, modest driver memory (``$RECSYS_SPARK_DRIVER_MEMORY``, default
    2g), Arrow transfers on, few shuffle partitions. Asking for another master stops the
    current session and starts a new one.

    Raises
    ------
    EngineUnavailableError
        pyspark or Java is missing (the message says what to install), or the session
        cannot start.
    """
    require_spark()
    from pyspark.sql import SparkSession

    url = spark_master(master)
    with _session_lock:
        # Our own reference, not getActiveSession(): that one is per thread, and Streamlit
        # runs each rerun in another thread.
        current = _sessions.get("current")
        if current is not None and current.sparkContext.master != url:
            current.stop()
            _sessions.clear()
        builder = (
            SparkSession.builder.master(url)
            .appName("recsys-lab")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config(
                "spark.driver.memory",
                lab_settings().spark_driver_memory or DEFAULT_DRIVER_MEMORY,
            )
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        if url.startswith("local"):  # the default 200 shuffle partitions only add overhead
            builder = builder.config(
                "spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 2))
            )
        executor_memory = lab_settings().spark_executor_memory
        if executor_memory:
            builder = builder.config("spark.executor.memory", executor_memory)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j / JVM start-up failures come in several types
            raise EngineUnavailableError(
                f"could not start Spark (master {url!r}): {exc}. Check that Java 17+ works "
                f"(`java -version`; install with `{JAVA_INSTALL}`) and that the master URL "
                "is reachable"
            ) from exc
        session.sparkContext.setLogLevel("ERROR")
        _sessions["current"] = session
        return session


def stop_spark_session() -> None:
    """Stop the shared session if one is running (tests and benchmarks call this at the end)."""
    if find_spec("pyspark") is None:
        return
    from pyspark.sql import SparkSession

    with _session_lock:
        current = _sessions.pop("current", None) or SparkSession.getActiveSession()
        if current is not None:
            current.stop()


# ---------------------------------------------------------------------- the model


class ALSSparkConfig(ALSConfig):
    """Settings of :class:`ALSSparkRecommender` (Spark MLlib's implicit ALS).

    ``regularization`` is Spark's ``regParam`` (scaled by each row's interaction count).
    With ``confidence="implicit"`` (the default) ``alpha`` means what it means for ``als``
    (an observed cell's confidence is ``alpha * value``); with ``"spark"`` it is Spark's own
    (confidence ``1 + alpha * value``).
    ``use_cg`` and ``num_threads`` only concern the implicit shell that serves the factors.
    """

    regularization: float = Field(
        0.1, ge=0, description="Spark's regParam (ALS-WR: times each row's interaction count)."
    )
    alpha: float = Field(
        1.0,
        gt=0,
        description="Confidence scale: a cell's confidence is alpha * weight (confidence "
        "'implicit') or 1 + alpha * weight (confidence 'spark').",
    )
    confidence: Literal["implicit", "spark"] = Field(
        "implicit",
        description="'implicit': Spark gets alpha * weight - 1 with its own alpha 1, so an "
        "observed cell's confidence is alpha * weight as in implicit's ALS (floored just "
        "above 1: Spark cannot weight a positive cell below an unobserved one); 'spark': "
        "the weight as is, confidence 1 + alpha * weight.",
    )
    checkpoint_interval: int = Field(
        5,
        ge=1,
        description="Checkpoint every this many iterations (cuts Spark's lineage; without "
        "checkpoints 15+ iterations overflow the JVM stack).",
    )
    blocks: int = Field(
        0,
        ge=0,
        description="User and item blocks of Spark's ALS; 0 = the session's default parallelism.",
    )
    spark_master: str | None = Field(
        None,
        description="Spark master URL (e.g. spark://host:7077); None = $RECSYS_SPARK_MASTER "
        "or local[*].",
    )


class ALSSparkRecommender(ALSRecommender):
    """Implicit ALS trained on Spark MLlib; recommends and saves exactly like ``als``.

    Training needs pyspark and Java (:func:`require_spark`); a model loaded from a saved
    folder needs neither.
    """

    name: ClassVar[str] = "als-spark"
    config_class: ClassVar[type[RecommenderConfig]] = ALSSparkConfig
    config: ALSSparkConfig

    def _fit_model(self, matrix: sp.csr_matrix) -> None:
        require_spark()
        from pyspark.ml.recommendation import ALS

        cfg = self.config
        spark = spark_session(cfg.spark_master)
        context = spark.sparkContext
        n_users, n_items = matrix.shape
        with tempfile.TemporaryDirectory(prefix="als-", dir=spark_work_dir()) as tmp:
            folder = Path(tmp)
            data_path = write_matrix_parquet(
                self._spark_values(matrix), folder / "interactions.parquet"
            )
            # Without a checkpoint directory Spark silently ignores checkpointInterval and
            # the lineage grows until the JVM's stack overflows (~15 iterations).
            context.setCheckpointDir(str(folder / "checkpoints"))
            blocks = cfg.blocks or max(1, context.defaultParallelism)
            estimator = ALS(
                rank=cfg.factors,
                maxIter=cfg.iterations,
                regParam=cfg.regularization,
                alpha=1.0 if cfg.confidence == "implicit" else cfg.alpha,
                implicitPrefs=True,
                userCol="user",
                itemCol="item",
                ratingCol="confidence",
                coldStartStrategy="drop",
                checkpointInterval=cfg.checkpoint_interval,
                numUserBlocks=blocks,
                numItemBlocks=blocks,
                seed=cfg.seed,
            )
            try:
                fitted = estimator.fit(spark.read.parquet(str(data_path)))
                # Arrow batches straight into numpy: no pandas frame, no per-row Python.
                user_table = fitted.userFactors.toArrow()
                item_table = fitted.itemFactors.toArrow()
            except Exception as exc:  # Py4JJavaError and friends: not a user error
                raise RuntimeError(f"Spark ALS failed: {exc}") from exc
        user_factors = _factor_array(user_table, n_users, cfg.factors)
        item_factors = _factor_array(item_table, n_items, cfg.factors)
        shell = self._new_implicit_model()
        shell.user_factors = user_factors
        shell.item_factors = item_factors
        self.model_ = shell

    #: The smallest value handed to Spark in ``confidence="implicit"`` mode: Spark gives
    #: cells <= 0 preference 0 and takes |value| for the confidence, so a cell implicit
    #: weights below 1 (alpha * weight < 1) gets confidence 1 + this instead.
    CONFIDENCE_FLOOR: ClassVar[float] = 1e-4

    def _spark_values(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The cell values Spark sees, so its confidence matches the chosen convention.

        Spark's implicit ALS uses confidence ``1 + alpha * r`` (preference 1 for r > 0);
        implicit's uses ``alpha * r``. With ``confidence="implicit"`` Spark gets
        ``r = alpha * weight - 1`` (floored at :attr:`CONFIDENCE_FLOOR`) and alpha 1.
        """
        if self.config.confidence == "spark":
            return matrix
        out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        out.data = np.maximum(
            out.data * np.float32(self.config.alpha) - np.float32(1.0),
            np.float32(self.CONFIDENCE_FLOOR),
        )
        return out


def _factor_array(table: pa.Table, n_rows: int, rank: int) -> np.ndarray:
    """Spark's ``(id, features)`` factor table as a dense ``(n_rows, rank)`` float32 array.

    Rows Spark has no factors for (no positive interaction) stay zero; the base class
    answers such users with the cold-start list anyway.
    """
    ids = table.column("id").to_numpy().astype(np.int64)
    flat = pc.list_flatten(table.column("features")).to_numpy().astype(np.float32, copy=False)
    out = np.zeros((n_rows, rank), dtype=np.float32)
    if len(ids):
        out[ids] = flat.reshape(len(ids), rank)
    return out
