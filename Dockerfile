# The monitor's one image: `onestop worker`, `sink`, `notify`, `topics`, `report`…
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY models models
COPY common common
COPY streams streams
COPY consumers consumers
COPY alerts alerts
RUN pip install . && useradd --system --uid 10001 --home-dir /data onestop \
    && mkdir -p /data && chown onestop /data

USER onestop
WORKDIR /data
# Inside a container the endpoints listen on every interface; state goes to /data.
ENV ONESTOP_METRICS_HOST=0.0.0.0 \
    ONESTOP_NOTIFIER_HOST=0.0.0.0 \
    ONESTOP_DATA_DIR=/data/faust
ENTRYPOINT ["onestop"]
CMD ["worker"]
