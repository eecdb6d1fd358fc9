# The preserve service image: the package, its PostgreSQL driver and Celery (workers),
# and pywb in an environment of its own for `preserve replay` (its pins never touch ours).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRESERVE_HOME=/data \
    PRESERVE_WAYBACK=/opt/pywb/bin/wayback

WORKDIR /app
COPY pyproject.toml README.md ./
COPY preserve ./preserve
COPY policies ./policies
RUN python -m venv /opt/pywb \
 && /opt/pywb/bin/pip install --no-cache-dir 'pywb>=2.8,<3' \
 && pip install --no-cache-dir '.[postgresql,workers]' \
 && useradd --create-home --uid 1000 preserve \
 && mkdir -p /data && chown preserve /data

USER preserve
VOLUME ["/data"]
ENTRYPOINT ["preserve"]
CMD ["demo"]
