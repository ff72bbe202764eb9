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
# No greenlight.toml is baked in (a local one may hold secrets, and .dockerignore keeps it out
# of the build context too): it is placed at /etc/greenlight/greenlight.toml when the machine
# is deployed (fly.toml [[files]], or a mounted file). Without one Greenlight starts on its
# embedded defaults. The example is there to read.
COPY greenlight.example.toml /etc/greenlight/
WORKDIR /etc/greenlight
USER greenlight
ENV GREENLIGHT_LISTEN=0.0.0.0:8080 \
    GREENLIGHT_DATABASE_URL=sqlite:///data/greenlight.db
EXPOSE 8080
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/greenlight"]
CMD ["serve"]
