# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY app ./app
# Dependencies only: the app itself runs from /srv/laurel so migrations sit beside it.
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir . && pip uninstall -y laurel

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 laurel
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/laurel
COPY --chown=laurel:laurel alembic.ini ./
COPY --chown=laurel:laurel migrations ./migrations
COPY --chown=laurel:laurel app ./app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv/laurel \
    LAUREL_ENV=production \
    LAUREL_ICON_UPLOAD_DIR=/srv/laurel/var/icons
RUN mkdir -p /srv/laurel/var/icons && chown -R laurel:laurel /srv/laurel/var
USER laurel
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
# Applies migrations, then serves with uvicorn.
CMD ["python", "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", "8000"]
