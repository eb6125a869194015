# The nps-bot image, built from this repository: `docker build -t nps-bot .` (docs/deploy.md, "A container").
# Runs as an unprivileged user; `nps db upgrade` runs before `nps serve` (deploy/docker/entrypoint.sh).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY storage/ storage/
COPY campaigns/ campaigns/
COPY bot/ bot/
COPY service/ service/
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/nps nps
COPY --from=build /install /usr/local
COPY deploy/docker/entrypoint.sh /usr/local/bin/nps-entrypoint
# The embedded SQLite database lives on the volume; set DATABASE_URL for PostgreSQL.
ENV DATABASE_URL=sqlite:////var/lib/nps/nps.db \
    HOST=0.0.0.0 \
    PORT=8000 \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/nps
WORKDIR /var/lib/nps
USER nps
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
ENTRYPOINT ["nps-entrypoint"]
CMD ["serve"]
