# ferry's runtime image: the runtime requirements only (no test packages), a non-root user,
# and a HEALTHCHECK that runs the worker health task on this container's worker.
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FERRY_CONFIG=/config
RUN groupadd --system ferry && useradd --system --gid ferry --home-dir /app --shell /usr/sbin/nologin ferry
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=ferry:ferry . .
RUN pip install --no-cache-dir --no-deps . && mkdir -p /config /state && chown ferry:ferry /state
USER ferry
# The configuration (connections.yml, pipelines/) is mounted read-only at /config.
HEALTHCHECK --interval=30s --timeout=15s --start-period=30s --retries=3 \
  CMD ferry health --hostname "worker@$(hostname)" --timeout 10 || exit 1
CMD ["ferry", "worker", "--hostname", "worker@%h"]
