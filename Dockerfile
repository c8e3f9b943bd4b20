# kpibot server image: `docker build -t kpibot .` then
# docker run -p 8000:8000 -v $PWD/config/example:/config -e KPIBOT_DATABASE_URL=... kpibot
# Either role on PostgreSQL (README "Scale-out"), from this one image (tagged kpibot): the web
# side with the default command,
#   docker run -p 8000:8000 -e KPIBOT_CHAT_QUEUE=1 -e KPIBOT_DATABASE_URL=postgresql+psycopg://… kpibot
# and workers with the same settings and the command `kpibot worker` (a worker serves no HTTP,
# so it runs without the web health check):
#   docker run --no-healthcheck -e KPIBOT_CHAT_QUEUE=1 -e KPIBOT_DATABASE_URL=… kpibot kpibot worker
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    KPIBOT_CONFIG_DIR=/config \
    KPIBOT_DATABASE_URL=sqlite:////data/kpibot.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY kpi_engine ./kpi_engine
COPY adapters ./adapters
COPY config ./config
COPY connectors ./connectors
# The message catalogues are compiled (.po → .mo, Babel's own workflow) before the package is
# installed with them (an entry that does not compile fails the build).
RUN pip install babel && pybabel compile -d bot/i18n/locale -D kpibot --statistics \
    && pip install . && useradd --create-home --uid 10001 kpibot && mkdir -p /data /config \
    && chown kpibot /data

USER kpibot
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["kpibot", "serve", "--host", "0.0.0.0", "--port", "8000"]
