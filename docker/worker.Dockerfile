# syntax=docker/dockerfile:1.7
#
# The sweep image: the `sweep` CLI with TensorFlow and optuna-dashboard, run as a non-root user.
# One Dockerfile, two variants chosen by the VARIANT build argument:
#
#   GPU (default): docker build -f docker/worker.Dockerfile -t sweep-worker:gpu .
#                  installs `.[gpu,dashboard]`: tensorflow[and-cuda] brings the CUDA libraries as
#                  pip wheels, so the host needs only the NVIDIA driver and container toolkit.
#   CPU:           docker build -f docker/worker.Dockerfile --build-arg VARIANT=cpu \
#                      -t sweep-worker:cpu .
#
# Entrypoint: docker/entrypoint.sh, which builds SWEEP_STORAGE from a password file when needed
# and then execs `sweep "$@"`. Default command: `worker`. Contract: docker/README.md.

FROM python:3.11.10-slim-bookworm AS build

ARG VARIANT=gpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY docker/constraints.txt /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY search_spaces ./search_spaces
COPY sweep ./sweep
RUN case "$VARIANT" in \
        gpu) extras="gpu,dashboard" ;; \
        cpu) extras="dashboard" ;; \
        *) echo "VARIANT must be gpu or cpu, got '$VARIANT'" >&2; exit 2 ;; \
    esac \
    && pip install --constraint /tmp/constraints.txt "/src[$extras]" \
    && sweep --help > /dev/null


FROM python:3.11.10-slim-bookworm

ARG VARIANT=gpu
LABEL org.opencontainers.image.title="sweep-worker" \
      org.opencontainers.image.description="sweep CLI (Keras VAE hyperparameter sweeps), ${VARIANT} variant"

# Non-root user with a fixed numeric id (Kubernetes runAsNonRoot checks numbers).
RUN groupadd --system --gid 10001 sweep \
    && useradd --system --uid 10001 --gid sweep --create-home --home-dir /home/sweep \
       --shell /usr/sbin/nologin sweep

COPY --from=build /opt/venv /opt/venv
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/sweep-entrypoint

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/sweep \
    MPLCONFIGDIR=/tmp/matplotlib \
    KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=2 \
    CUDA_DEVICE_ORDER=PCI_BUS_ID \
    SWEEP_VARIANT=${VARIANT}

WORKDIR /home/sweep
USER 10001:10001

ENTRYPOINT ["/usr/local/bin/sweep-entrypoint"]
CMD ["worker"]
