# syntax=docker/dockerfile:1
# lakehouse: a Rust build stage, then a slim non-root runtime.
#   docker build -t lakehouse .
#   docker run -p 5433:5433 -v lake:/var/lib/lakehouse lakehouse                      # serve
#   docker run -p 5433:5433 -p 8088:8088 lakehouse demo --dir /var/lib/lakehouse/demo \
#       --listen 0.0.0.0:5433 --stream-listen 0.0.0.0:8088                            # demo

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first: this layer is rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && echo '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
COPY catalog catalog
COPY grants grants
COPY sql sql
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin lakehouse

FROM debian:bookworm-slim
# ca-certificates is not pinned: the point release of the base image decides it, and a pin
# would break every rebuild after a Debian security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 lakehouse \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /var/lib/lakehouse lakehouse
COPY --from=build /src/target/release/lakehouse /usr/local/bin/lakehouse
COPY docker/lakehouse.yaml /etc/lakehouse/lakehouse.yaml
COPY catalog /etc/lakehouse/catalog
COPY grants /etc/lakehouse/grants
COPY sql /etc/lakehouse/sql
USER 10001:10001
WORKDIR /var/lib/lakehouse
VOLUME ["/var/lib/lakehouse"]
EXPOSE 5433 8088
# Speaks the start of the PostgreSQL protocol to the server: no credentials needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["lakehouse", "health", "--address", "127.0.0.1:5433"]
ENTRYPOINT ["lakehouse"]
CMD ["serve", "--config", "/etc/lakehouse/lakehouse.yaml"]
