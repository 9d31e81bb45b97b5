# One image for every Stackwire process; docker-compose.yml picks the command.
# `product` is what production runs: the four product packages and their runtime dependencies
# only (no sandbox, benchmark, embedded servers). `demo` adds the provider sandbox on top.
FROM python:3.11-slim AS product
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STACKWIRE_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY tasks ./tasks
COPY receivers ./receivers
COPY schemas ./schemas
RUN pip install --no-cache-dir . && useradd --create-home stackwire
USER stackwire
EXPOSE 8000 5555
CMD ["stackwire", "receiver"]

FROM product AS demo
USER root
COPY devtools ./devtools
# the sandbox needs only cryptography (PayPal's RSA signatures); the embedded servers of the
# `local` extra are for a machine without PostgreSQL and Redis, which compose provides
RUN pip install --no-cache-dir --no-deps ./devtools && pip install --no-cache-dir "cryptography>=42,<47"
USER stackwire
EXPOSE 8100
