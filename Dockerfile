# Latchkey container image: a static binary on an empty base, run as a
# non-root user. Build with: docker build -t latchkey .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/latchkey ./cmd/latchkey

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/latchkey /latchkey
USER 65532:65532
EXPOSE 3001 3002 3003
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/latchkey", "health"]
ENTRYPOINT ["/latchkey"]
CMD ["serve", "all", "--provider-addr", "0.0.0.0:3001", "--userapi-addr", "0.0.0.0:3003", "--sessionapi-addr", "0.0.0.0:3002"]
