# syntax=docker/dockerfile:1
#
# Guard's container image.
#
#   docker build -t guard:latest .
#   docker build -t guard:1.0.0 --build-arg VERSION=1.0.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/guard:1.0.0 .
#
# The binary is the README's `go build ./cmd/guard`, built static (CGO_ENABLED=0)
# and reproducible (-trimpath), on a distroless static image that runs as the
# non-root user 65532 and has no shell: probes use `guard health` (see
# docs/kubernetes.md). cmd/guard/dockerfile_test.go checks this file's build
# line against the README and builds it the same way.

ARG GO_VERSION=1.26.8

# --platform=$BUILDPLATFORM: the compiler runs natively and cross-compiles to
# the target platform (GOOS/GOARCH below), so a multi-arch build needs no
# emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: the download layer is kept until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by BuildKit from --platform (empty: the build machine's own).
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" -o /out/guard ./cmd/guard

# static-debian12:nonroot: CA certificates, /etc/passwd with nonroot (65532),
# tzdata; no libc, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/guard /guard
# The repository's config.hcl (every default; admin on loopback). In
# Kubernetes a ConfigMap is mounted over /etc/guard (deploy/kubernetes/).
COPY config.hcl /etc/guard/config.hcl
# Numeric, so that Kubernetes' runAsNonRoot can verify it (a user name such as
# "nonroot" cannot be checked and the pod would not start).
USER 65532:65532
# 5222 XMPP c2s (STARTTLS), 5223 XMPP c2s Direct TLS, 9090 admin HTTP
# (/healthz, /readyz, /metrics, /-/drain, /-/reload).
EXPOSE 5222 5223 9090
# No HEALTHCHECK: Kubernetes ignores it and uses its own probes; with plain
# Docker, run `docker exec CONTAINER /guard health`.
# ENTRYPOINT is the binary alone and CMD its default arguments, so that
# `docker run guard:latest validate -config /etc/guard/config.hcl` and
# `guard health` work with the same image.
ENTRYPOINT ["/guard"]
CMD ["-config", "/etc/guard/config.hcl"]
