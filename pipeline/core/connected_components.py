"""Connected components of a large graph in Spark DataFrames, so clustering never runs on one machine.

Alternating large-star / small-star (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014): every round rewires each edge towards smaller node ids without ever adding
edges, and the graph ends as stars whose centres are the components' smallest ids. It converges in
O(log n) rounds in practice (O(log^2 n) proven), each a few shuffles. Only counts come back to the driver.

Checkpoints: the lineage is cut after every half-round (``Checkpoints``), so round k's plan does not carry
rounds 1..k-1. On a cluster each cut writes the edges as Parquet parts through the storage layer
(``pipeline.core.storage``: local, s3://, gs://; no Hadoop filesystem needed) to
``<run.checkpoint_uri>/<stage run id>/cc-round-<k>/`` and reads them back: an executor lost later loses no
data, its tasks re-read the files. Round k-1's files are deleted once round k is written, the whole folder
when the stage ends (failed or not); a driver killed mid-stage leaves it, and the next run on the same output
deletes ``<output>/_checkpoints/`` (``pipeline.core.output_lease``). ``run.checkpoint_uri`` empty: in local mode
(``local[...]``) Spark's ``localCheckpoint`` (blocks in the one JVM, released round by round), on any other
master ``<stage output>/_checkpoints/``. Either way the components, and so the output, are the same. The stages'
other cuts (dedup_fuzzy's component members, dedup_exact's prepared rows with a prior index) use the same
``stage_checkpoints``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass
class Components:
    labels: object        # DataFrame[node long, root long]: every node of an edge, root = its component's smallest id
    rounds: int           # large-star + small-star rounds run
    edges: int            # distinct undirected input edges (self-loops dropped)


class Checkpoints:
    """Named lineage cuts: Parquet parts of about ``target_bytes`` under ``folder`` through ``store``, or Spark's
    local checkpoint where ``folder`` is None. ``drop(name)`` releases one, ``close()`` all of them and the folder."""

    def __init__(self, store=None, folder: str | None = None, target_bytes: int | None = None) -> None:
        self.store, self.folder, self.target_bytes = store, folder, target_bytes
        self._cuts: dict[str, object] = {}   # name -> the local checkpoint's RDD, or the parts' folder

    def cut(self, df, name: str):
        if self.folder is None:
            out = df.localCheckpoint(eager=True)
            self._cuts[name] = out._jdf.queryExecution().logical().rdd()  # LogicalRDD over the checkpointed RDD
            return out
        from pipeline.core.sparkio import read_parts, write_parquet_parts
        from pipeline.core.storage import join
        where = join(self.folder, name)
        self._cuts[name] = where
        parts, schema = write_parquet_parts(df, self.store, where, self.target_bytes)
        return read_parts(df.sparkSession, self.store, parts, schema, raw=True)

    def drop(self, name: str) -> None:
        cut = self._cuts.pop(name, None)
        if isinstance(cut, str):
            self.store.delete(cut)
        elif cut is not None:
            cut.unpersist(False)

    def close(self) -> None:
        """Release every cut; a folder that cannot be deleted now is left for the next run's cleanup."""
        from pipeline.core.storage import StorageError
        try:
            for name in list(self._cuts):
                self.drop(name)
            if self.folder is not None:
                self.store.delete(self.folder)
        except (StorageError, OSError) as e:
            print(f"note: could not delete the checkpoints in {self.folder}: {e}", file=sys.stderr)


def stage_checkpoints(ctx) -> Checkpoints:
    """A stage's checkpoints per ``run.checkpoint_uri`` (see the module docstring)."""
    from pipeline.core.dataset import CHECKPOINTS_DIR
    from pipeline.core.storage import join
    base = ctx.cfg.run.checkpoint_uri
    if not base:
        master = ctx.spark.sparkContext.master
        if master == "local" or master.startswith("local["):  # one JVM; local-cluster[...] has executors to lose
            return Checkpoints()
        base = join(ctx.output, CHECKPOINTS_DIR)
    return Checkpoints(ctx.store, join(base, ctx.run_id or "run"), ctx.cfg.run.target_part_bytes)


def _large_star(e):
    """Each node u links its larger neighbours to m(u) = min(N(u) + u)."""
    from pyspark.sql import functions as F
    both = e.select(F.col("lo").alias("u"), F.col("hi").alias("v")).unionByName(
        e.select(F.col("hi").alias("u"), F.col("lo").alias("v")))
    m = both.groupBy("u").agg(F.min("v").alias("mv")).select("u", F.least("u", "mv").alias("m"))
    return (both.where(F.col("v") > F.col("u")).join(m, "u")
            .select(F.col("v").alias("hi"), F.col("m").alias("lo")).distinct())


def _small_star(e):
    """Each node u links itself and its smaller neighbours to the smallest of them."""
    from pyspark.sql import functions as F
    m = e.groupBy("hi").agg(F.min("lo").alias("m"))
    members = (e.join(m, "hi").where(F.col("lo") != F.col("m"))
               .select(F.col("lo").alias("hi"), F.col("m").alias("lo")))
    return members.unionByName(m.select("hi", F.col("m").alias("lo"))).distinct()


def _unsettled(e) -> int:
    """Nodes that still break the star shape: more than one parent, or a parent that has a parent."""
    from pyspark.sql import functions as F
    tagged = e.select(F.col("hi").alias("n"), F.lit(1).alias("o"), F.lit(0).alias("i")).unionByName(
        e.select(F.col("lo").alias("n"), F.lit(0).alias("o"), F.lit(1).alias("i")))
    agg = tagged.groupBy("n").agg(F.sum("o").alias("o"), F.sum("i").alias("i"))
    return agg.where((F.col("o") > 1) | ((F.col("o") >= 1) & (F.col("i") >= 1))).count()


def connected_components(edges, src: str = "src", dst: str = "dst", max_rounds: int = 200,
                         checkpoints: Checkpoints | None = None, say=None) -> Components:
    """Components of the undirected graph given by two long columns; nodes without edges are not listed.
    The labels read the last round's checkpoint: ``checkpoints`` (default: local ones) is closed by the caller
    once they are used. ``say``: called with a progress line after each round."""
    import time

    from pyspark.sql import functions as F
    cp = checkpoints or Checkpoints()
    t0 = time.time()
    e = cp.cut(edges.select(F.greatest(src, dst).alias("hi"), F.least(src, dst).alias("lo"))
               .where(F.col("hi") != F.col("lo")).distinct(), "cc-round-0")
    n_edges = e.count()
    rounds = 0
    while n_edges:
        unsettled = _unsettled(e)
        if say is not None:
            say(f"connected components: round {rounds} done, {unsettled:,} nodes not yet in a star "
                f"({n_edges:,} edges, {time.time() - t0:.0f}s)")
        if not unsettled:
            break
        if rounds >= max_rounds:
            raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")
        rounds += 1
        large = cp.cut(_large_star(e), f"cc-round-{rounds}-large")
        e = cp.cut(_small_star(large), f"cc-round-{rounds}")
        cp.drop(f"cc-round-{rounds}-large")
        cp.drop(f"cc-round-{rounds - 1}")
    roots = e.select(F.col("lo").alias("node")).distinct().withColumn("root", F.col("node"))
    labels = e.select(F.col("hi").alias("node"), F.col("lo").alias("root")).unionByName(roots)
    return Components(labels, rounds, n_edges)
