# A small static image of cdc: one binary, CA certificates, no shell, run as a
# non-root user. Build it with `make image` (buildah or docker), or
#   docker build -t cdc .
#
# cdc links libpg_query (PostgreSQL's parser, for cdc check-migration) through
# cgo, so the binary is linked statically by the C toolchain.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make static BIN=/out/cdc

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/cdc /cdc
# nobody:nogroup in distroless images; any non-root id works.
USER 65532:65532
EXPOSE 9464
ENTRYPOINT ["/cdc"]
CMD ["run", "--config", "/etc/cdc/cdc.yaml"]
