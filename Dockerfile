# The action's image: one static binary and a CA bundle, nothing else. Root, no WORKDIR, exec-form
# ENTRYPOINT (GitHub's rules for container actions).
#
# Stage order matters. `--target prebuilt` packs a binary built beforehand (scripts/build-action-image:
# offline, no base image to pull) and stops there, with the legacy builder and BuildKit alike. Without
# --target, BuildKit (what GitHub's runners use for `runs.image: Dockerfile`) builds only the last
# stage and what it needs: compile from source, then pack.

FROM scratch AS prebuilt
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/ecs-deploy-action /ecs-deploy-action
ENTRYPOINT ["/ecs-deploy-action"]

FROM rust:1.95-bookworm AS compile
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p ecs-deploy-action \
    && cp target/x86_64-unknown-linux-musl/release/ecs-deploy-action /ecs-deploy-action

FROM scratch
COPY --from=compile /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=compile /ecs-deploy-action /ecs-deploy-action
ENTRYPOINT ["/ecs-deploy-action"]
