# syntax=docker/dockerfile:1.7
# mdr's quality stage on Ray: the official Ray image of our ray version (Python 3.11), mdr with its pinned
# dependencies and the fastText classifier backend. Runs as the image's non-root `ray` user (uid 1000).
#   docker build -f docker/ray.Dockerfile -t mdr-ray:0.1.0 .
# The embedding backend (sentence-transformers + torch, several GB) only with --build-arg EMBEDDING=1.
FROM rayproject/ray:2.60.0-py311

WORKDIR /opt/mdr
COPY --chown=1000:100 docker/requirements.txt /tmp/requirements.txt
COPY --chown=1000:100 docker/requirements-embedding.txt /tmp/requirements-embedding.txt
ARG EMBEDDING=""
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && if [ -n "${EMBEDDING}" ]; then pip install --no-cache-dir -r /tmp/requirements-embedding.txt; fi
COPY --chown=1000:100 pyproject.toml README.md /opt/mdr/
COPY --chown=1000:100 configs /opt/mdr/configs
COPY --chown=1000:100 k8s /opt/mdr/k8s
COPY --chown=1000:100 jobs /opt/mdr/jobs
COPY --chown=1000:100 udfs /opt/mdr/udfs
COPY --chown=1000:100 pipeline /opt/mdr/pipeline
# editable, so configs/ and k8s/ are found beside the code; the image's ray stays as it is
RUN pip install --no-cache-dir --no-deps -e /opt/mdr \
    && python -c "import pipeline.stages.quality"
ENV PYTHONUNBUFFERED=1
USER 1000
