# scimgw in a container: `scimgw serve` on 0.0.0.0:8080, configuration in /etc/scimgw, the
# SQLite store (when no PostgreSQL URL is given) in the /var/lib/scimgw volume. The same image
# carries `vendor-sim`, which docker-compose.yml runs as three simulated vendor apps.
#
#   docker build -t scimgw .
#   docker run --rm -p 127.0.0.1:8080:8080 -v scimgw-data:/var/lib/scimgw scimgw
#   docker run --rm -v scimgw-data:/var/lib/scimgw scimgw tenant add acme
#
# Builder and runtime use the same Debian release so that the binaries' glibc matches.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The whole workspace: every member's manifest is needed to resolve it. SQLite and libpq are
# built from their bundled sources (the image's gcc is all they need); Cargo.lock is honoured.
COPY . .
# Cache mounts keep the registry and target/ between builds; the binaries are copied out of the
# mount because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p scimgw -p vendor-sim \
 && mkdir -p /out \
 && cp target/release/scimgw target/release/vendor-sim /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# reqwest speaks TLS to the vendors with rustls over the system CA store.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid, so a bind-mounted data folder can be given to it (chown 10001:10001).
RUN groupadd --system --gid 10001 scimgw \
 && useradd --system --uid 10001 --gid scimgw --home-dir /var/lib/scimgw --no-create-home \
      --shell /usr/sbin/nologin scimgw \
 && mkdir -p /var/lib/scimgw \
 && chown scimgw:scimgw /var/lib/scimgw
COPY --from=builder /out/scimgw /out/vendor-sim /usr/local/bin/
# config/gateway.toml and the tenant samples; mount your own tenants folder over
# /etc/scimgw/tenants (docker-compose.yml does).
COPY config/ /etc/scimgw/

ENV SCIMGW_CONFIG=/etc/scimgw/gateway.toml \
    SCIMGW_TENANTS_DIR=/etc/scimgw/tenants \
    SCIMGW_LISTEN=0.0.0.0:8080 \
    SCIMGW_STORE__URL=sqlite:///var/lib/scimgw/scimgw.db \
    SCIMGW_LOG__FORMAT=json

WORKDIR /var/lib/scimgw
VOLUME ["/var/lib/scimgw"]
USER scimgw:scimgw
EXPOSE 8080
# scimgw is PID 1: it handles SIGTERM (finish in-flight requests and deliveries, then exit) and
# SIGHUP (reload the targets) itself.
ENTRYPOINT ["scimgw"]
CMD ["serve"]
