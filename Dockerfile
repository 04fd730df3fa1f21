# syntax=docker/dockerfile:1
# Build: a full Rust toolchain. Run: Debian slim with only the binary, as a non-root user.
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
RUN cargo build --release --locked --bin rayo && strip target/release/rayo

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin rayo \
    && mkdir -p /data && chown rayo:rayo /data
COPY --from=build /src/target/release/rayo /usr/local/bin/rayo
# Port 53 for the BIP-353 zones (RAYO_DNS_BIND) without running as root: the binary may bind
# low ports, and nothing else.
RUN apt-get update && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_bind_service=+ep /usr/local/bin/rayo \
    && apt-get purge -y libcap2-bin && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
USER rayo
WORKDIR /data
ENV RAYO_DATA_DIR=/data \
    RAYO_BIND=0.0.0.0:8080 \
    RAYO_LOG_FORMAT=json \
    RAYO_DEMO_USER=false
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["rayo", "serve"]
