# One gateway host: `docker run -v kanban-home:/var/lib/kanban -e KANBAN_DB_URL=… -e TELEGRAM_BOT_TOKEN=… IMAGE`.
# Run the same image on N hosts against one PostgreSQL: each platform connection and the board's
# maintenance run on one of them at a time (see the README, Deployment). Secrets come from the
# environment only; config.yaml (no secrets) lives in the KANBAN_HOME volume.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KANBAN_HOME=/var/lib/kanban

# git: worktrees and workspace commands; bubblewrap: contained agents (see Containment).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/kanban
COPY pyproject.toml README.md ./
COPY kanban_core ./kanban_core
COPY gateway ./gateway
COPY adapters ./adapters
COPY web ./web
RUN pip install ".[all]"

# Never root: agents run as this user, with this user's reach.
RUN useradd --system --create-home --home-dir /home/kanban --shell /usr/sbin/nologin kanban \
    && mkdir -p "$KANBAN_HOME" && chown kanban:kanban "$KANBAN_HOME"
USER kanban
VOLUME ["/var/lib/kanban"]

# SIGTERM stops it cleanly: in-flight work drains and its leases are released at once.
STOPSIGNAL SIGTERM
ENTRYPOINT ["kanban"]
CMD ["gateway"]
