# syntax=docker/dockerfile:1
# Shared base of every service image: dependencies, the generated gRPC package, the shared library (libs/), the
# proto, the broker topology and the non-root `app` user it ends on. It copies no service folder; each
# <service>/Dockerfile starts `FROM base` and adds only its own folder, PYTHONPATH, EXPOSE and CMD.
# Build context is the repository root:
#   docker build -f docker/base.Dockerfile -t ticketremaster/base .
# docker-compose.yml builds it as the `base` service and passes it to the service builds as the `base` context.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: dependencies and the generated gRPC package ------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt
# Same command as `make proto`: one generated package (trproto), never edited by hand, never copied per service.
COPY proto/ proto/
RUN mkdir -p build/gen/trproto \
 && /opt/venv/bin/python -m grpc_tools.protoc -Itrproto=proto --python_out=build/gen --grpc_python_out=build/gen \
      --pyi_out=build/gen proto/inventory.proto \
 && touch build/gen/trproto/__init__.py

# ---- runtime base ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/libs:/app/build/gen:/app
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/build/gen build/gen
COPY libs/ libs/
COPY proto/ proto/
COPY rabbitmq/ rabbitmq/
RUN python -m compileall -q libs build/gen
# Everything built on the base runs as `app`. A service Dockerfile's COPY still writes as root (no --chown), so its
# code stays read-only for the server.
USER app
