# One image for every Stackwire process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STACKWIRE_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY tasks ./tasks
COPY receivers ./receivers
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --create-home stackwire
USER stackwire
EXPOSE 8000 5555 8100
CMD ["stackwire", "receiver"]
