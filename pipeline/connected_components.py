"""Connected components of a large graph in Spark DataFrames, so clustering never runs on one machine.

Alternating large-star / small-star (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014): every round rewires each edge towards smaller node ids without ever adding
edges, and the graph ends as stars whose centres are the components' smallest ids. It converges in
O(log n) rounds in practice (O(log^2 n) proven), each a few shuffles; the lineage is cut after every
round with a checkpoint (reliable when the SparkContext has a checkpoint directory, local otherwise).
Only counts come back to the driver.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Components:
    labels: object        # DataFrame[node long, root long]: every node of an edge, root = its component's smallest id
    rounds: int           # large-star + small-star rounds run
    edges: int            # distinct undirected input edges (self-loops dropped)


def cut_lineage(df):
    """Materialize and drop the lineage, so round k's plan does not carry rounds 1..k-1."""
    sc = df.sparkSession.sparkContext
    return df.checkpoint(eager=True) if sc.getCheckpointDir() else df.localCheckpoint(eager=True)


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
                         say=None) -> Components:
    """Components of the undirected graph given by two long columns; nodes without edges are not listed.
    ``say``: called with a progress line after each round."""
    import time

    from pyspark.sql import functions as F
    t0 = time.time()
    e = cut_lineage(edges.select(F.greatest(src, dst).alias("hi"), F.least(src, dst).alias("lo"))
             .where(F.col("hi") != F.col("lo")).distinct())
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
        e = cut_lineage(_small_star(cut_lineage(_large_star(e))))
        rounds += 1
    roots = e.select(F.col("lo").alias("node")).distinct().withColumn("root", F.col("node"))
    labels = e.select(F.col("hi").alias("node"), F.col("lo").alias("root")).unionByName(roots)
    return Components(labels, rounds, n_edges)
