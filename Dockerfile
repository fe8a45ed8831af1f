# The API image. The database is the official timescale/timescaledb image (see docker-compose.yml).
# Browser assets (Swagger UI) come pinned from package-lock.json, so /docs needs no CDN at run time.
FROM node:20-slim AS assets
WORKDIR /srv
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim

WORKDIR /srv
# PyICU is built against Debian's ICU (look-alike checks for robot ids).
RUN apt-get update && apt-get install -y --no-install-recommends libicu-dev pkg-config g++ \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv
COPY pyproject.toml uv.lock ./
RUN UV_PYTHON_DOWNLOADS=never uv sync --locked --no-dev --no-install-project
COPY app ./app
COPY migrations ./migrations
COPY --from=assets /srv/node_modules/swagger-ui-dist ./node_modules/swagger-ui-dist
COPY --from=assets /srv/node_modules/leaflet ./node_modules/leaflet
COPY --from=assets /srv/node_modules/leaflet.markercluster ./node_modules/leaflet.markercluster
COPY --from=assets /srv/node_modules/uplot ./node_modules/uplot

ENV FLEET_HOST=0.0.0.0 FLEET_PORT=8000 FLEET_WORKERS=2
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --retries=10 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"
CMD [".venv/bin/python", "-m", "app"]
