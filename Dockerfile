# accessrc-sim server image: subscription APIs, schedules, delivery queue and delivery log on port 8080.
#   docker build -t accessrc-sim .
#   docker run --rm -p 8080:8080 -v accessrc-sim-data:/data -e ACCESSRC_SIM_ALLOW_HOSTS=host.docker.internal accessrc-sim
# Linted by hadolint in CI; tests/test_dockerfile.py replays its COPY and pip steps and runs its CMD and HEALTHCHECK.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user without a shell or a password; /data (keys and database) is the only place it writes.
RUN groupadd --system --gid 10001 sim \
    && useradd --system --uid 10001 --gid sim --home-dir /data --no-create-home --shell /usr/sbin/nologin sim \
    && mkdir -p /data/keys \
    && chown -R sim:sim /data \
    && chmod 0700 /data /data/keys

WORKDIR /src
COPY pyproject.toml README.md ./
COPY simulator ./simulator
# the shipped scenarios, conformance sets included: simulator/shipped_scenarios links to them and the wheel holds them
COPY scenarios ./scenarios
# The project from the build context, with psycopg for `--db postgresql://…` (compose.yaml: replicas on one database);
# its dependencies' ranges are in pyproject.toml (hadolint's DL3013 reads ".[postgresql]" as an unpinned package).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgresql]"

# The data folder is the volume: the RSA key pair in /data/keys (private key 0600, generated on first start)
# and the SQLite file /data/accessrc-sim.db.
ENV ACCESSRC_SIM_HOME=/data
WORKDIR /data
VOLUME ["/data"]

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["accessrc-sim", "serve", "--host", "0.0.0.0", "--port", "8080"]
