# Build: docker build -t guard .
# The binary is the same as `go build ./cmd/guard` from the README, built static.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/guard ./cmd/guard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/guard /guard
COPY config.hcl /etc/guard/config.hcl
USER nonroot:nonroot
EXPOSE 5222 5223 9090
ENTRYPOINT ["/guard"]
CMD ["-config", "/etc/guard/config.hcl"]
