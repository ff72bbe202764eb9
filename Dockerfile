# syntax=docker/dockerfile:1
# Build stage: the full toolchain.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin greenlight \
 && cp target/release/greenlight /usr/local/bin/greenlight

# Runtime stage: a small Debian with CA roots, running as an unprivileged user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin greenlight \
 && mkdir -p /data /etc/greenlight \
 && chown greenlight:greenlight /data
COPY --from=build /usr/local/bin/greenlight /usr/local/bin/greenlight
# Your greenlight.toml (if present beside this Dockerfile) is picked up from here; without
# one Greenlight starts on its embedded defaults.
COPY greenlight.example.toml greenlight.toml* /etc/greenlight/
WORKDIR /etc/greenlight
USER greenlight
ENV GREENLIGHT_LISTEN=0.0.0.0:8080 \
    GREENLIGHT_DATABASE_URL=sqlite:///data/greenlight.db
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/greenlight"]
CMD ["serve"]
