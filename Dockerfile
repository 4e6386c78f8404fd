# syntax=docker/dockerfile:1
# 1. the dashboard
FROM node:22-bookworm-slim AS frontend
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# 2. the Python environment (CPU torch from the PyTorch index, or a local wheel in ./wheels)
FROM python:3.11-slim-bookworm AS builder
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /venv
COPY wheels/ /wheels/
RUN /venv/bin/pip install --find-links /wheels --extra-index-url "${TORCH_INDEX}" "torch==2.13.0"
COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY migrations/ migrations/
COPY src/ src/
COPY --from=frontend /build/src/aaiti/static/dist/ src/aaiti/static/dist/
RUN /venv/bin/pip install -c constraints.txt ".[ml,postgres,distributed]"

# 3. runtime: non-root, read-only friendly (state lives in /data)
FROM python:3.11-slim-bookworm
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin aaiti \
    && mkdir -p /data && chown aaiti:aaiti /data
COPY --from=builder /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    AAITI_VAR_DIR=/data \
    AAITI_SERVER__HOST=0.0.0.0
USER 10001
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4).status != 200)"]
CMD ["aaiti", "serve"]
