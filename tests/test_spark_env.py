"""The environment mdr gives Spark before it starts: the interpreter its workers run, the local-mode address."""
import os
import sys

from pipeline.core.spark import spark_env


def test_unset_or_empty_python_becomes_this_interpreter_and_a_set_one_is_kept(monkeypatch):
    # `export PYSPARK_PYTHON=` left every extract task failing with "Cannot run program "": No such file"
    monkeypatch.setenv("PYSPARK_PYTHON", "")
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", "")  # set, so that monkeypatch puts the original back
    monkeypatch.setenv("SPARK_LOCAL_IP", " ")
    spark_env("local[2,4]")
    assert os.environ["PYSPARK_PYTHON"] == os.environ["PYSPARK_DRIVER_PYTHON"] == sys.executable
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/conda/bin/python3")
    monkeypatch.delenv("SPARK_LOCAL_IP")
    spark_env("spark://head:7077")
    assert os.environ["PYSPARK_PYTHON"] == "/opt/conda/bin/python3"  # the user's choice stands
    assert "SPARK_LOCAL_IP" not in os.environ  # a cluster's driver binds where it must
