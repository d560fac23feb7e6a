# The cachet server image, for machines that can pull base images (`docker build -t cachet .`).
# On a machine without a registry, `cachet docker build` makes the same image from
# docker/Dockerfile.local. Stage 1 builds the static musl binaries; stage 2 is `scratch` with
# `cachet-server` and `cachet` only: no shell, no curl; the health check is `cachet healthcheck`.
FROM rust:1-bookworm AS builder
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CC_x86_64_unknown_linux_musl=musl-gcc
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p cachet \
    && mkdir -p /out/var/cachet \
    && cp target/x86_64-unknown-linux-musl/release/cachet \
          target/x86_64-unknown-linux-musl/release/cachet-server /out/

FROM scratch
COPY --from=builder /out/cachet /out/cachet-server /usr/local/bin/
COPY --from=builder --chown=1000:1000 /out/var/ /var/
USER 1000:1000
ENV CACHET_LISTEN=0.0.0.0:4226 \
    CACHET_STORAGE=dir:/var/cachet \
    CACHET_LOG_FORMAT=text \
    NO_COLOR=1
EXPOSE 4226
VOLUME /var/cachet
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/cachet", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/cachet-server"]
