# fedisora: one image for the web process and the render worker.
# The web process never imports torch; the worker loads the model from FEDISORA_RENDER_MODEL.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# A GPU host installs the CUDA build of torch that matches its driver, e.g.
#   docker compose build --build-arg TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>"
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install ${TORCH_SPEC}

COPY pyproject.toml README.md ./
COPY fedisora ./fedisora
COPY activitypub ./activitypub
COPY render ./render
COPY web ./web
COPY migrations ./migrations
RUN pip install '.[render]'

RUN useradd --create-home --uid 1000 fedisora && mkdir -p /data && chown fedisora /data
USER fedisora
ENV FEDISORA_DATA_DIR=/data FEDISORA_MEDIA_ROOT=/data/media
EXPOSE 8000
CMD ["fedisora", "serve", "--host", "0.0.0.0", "--port", "8000"]
