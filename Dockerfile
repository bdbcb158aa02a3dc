# syntax=docker/dockerfile:1
# One image for the store API, worker and beat (and central_sim for local stacks).
# Build stage: uv resolves the locked dependencies into /app/.venv; the runtime stage copies
# only that and the code, and runs as an unprivileged user.

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (cached while only the code changes); no dev or load groups.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-install-project
COPY README.md alembic.ini ./
COPY http_edge ./http_edge
COPY store_service ./store_service
COPY central_sim ./central_sim
COPY chaos ./chaos
COPY harness ./harness
COPY bin ./bin
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-default-groups --no-editable

FROM python:3.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 store \
    && useradd --system --uid 10001 --gid store --home-dir /app --shell /usr/sbin/nologin store \
    && mkdir /data && chown store:store /data
WORKDIR /app
COPY --from=build --chown=store:store /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STORE_DATA_DIR=/data \
    STORE_DATABASE_URL=sqlite:////data/store.db \
    STORE_LOG_JSON=true
# The store user (uid 10001) is created in this stage, so its name resolves in the container.
# hadolint ignore=DL3066
USER store
VOLUME ["/data"]
EXPOSE 8001 9102
# The API's liveness; compose gives the worker, beat and central_sim their own checks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8001/health/live', timeout=4).status != 200)"]
CMD ["store-api", "--host", "0.0.0.0", "--port", "8001"]
