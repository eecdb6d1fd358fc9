# The preserve service image: the package, its PostgreSQL driver and Celery (workers).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRESERVE_HOME=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY preserve ./preserve
COPY policies ./policies
RUN pip install --no-cache-dir '.[postgresql,workers]' \
 && useradd --create-home --uid 1000 preserve \
 && mkdir -p /data && chown preserve /data

USER preserve
VOLUME ["/data"]
ENTRYPOINT ["preserve"]
CMD ["demo"]
