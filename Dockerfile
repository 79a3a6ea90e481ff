# One image for web, worker, beat and migrate (docker-compose.yml picks the command).
# Installed with uv exactly as uv.lock pins it; the same uv version as the Makefile.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies first, so this layer is reused while only the code changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

# Then the project itself (installed editable: companion.migrate finds /app/migrations beside it).
COPY companion ./companion
COPY workers ./workers
COPY migrations ./migrations
RUN uv sync --frozen --no-dev \
    && useradd --system --create-home --uid 10001 companion \
    && mkdir -p /app/instance \
    && chown companion:companion /app/instance

USER companion
# Production: no SECRET_KEY, no start (a key generated inside a container would change on each
# rebuild and differ between replicas).
ENV PATH=/app/.venv/bin:$PATH \
    COMPANION_INSTANCE_PATH=/app/instance \
    COMPANION_ENV=production

EXPOSE 5000
# gunicorn's head limits stand above the app's, so an oversized request gets the JSON 414/431.
CMD ["gunicorn", "--config=python:companion.gunicorn_conf", "--bind=0.0.0.0:5000", \
     "--worker-class=companion.gunicorn_worker.BalancedThreadWorker", "--workers=3", "--threads=4", \
     "--limit-request-line=8190", "--limit-request-fields=200", "--limit-request-field_size=16384", \
     "companion.wsgi:app"]
