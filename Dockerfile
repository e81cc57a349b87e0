# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse --short HEAD) -t metabase-bot .
# Run:   docker run --env-file .env -v metabase-bot-data:/data metabase-bot

FROM golang:1.26 AS build
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/metabase-bot ./cmd/metabase-bot \
 && mkdir -p /out/data

# Static, non-root, no shell; includes CA certificates for Slack and Metabase over HTTPS.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/metabase-bot /metabase-bot
# The volume's mount point must exist and belong to nonroot (uid 65532) in the image: Docker copies
# its ownership into a new named volume, otherwise root owns it and the bot cannot write there.
COPY --from=build --chown=65532:65532 /out/data /data
# The SQLite file lives here (mount a volume). With several replicas use DATABASE_URL=postgres://… instead.
VOLUME /data
ENV DATABASE_URL=sqlite:/data/metabase-bot.db HTTP_ADDR=:8080
# Only /healthz, /readyz and /metrics: Socket Mode connects out to Slack and needs no inbound port.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/metabase-bot", "healthcheck"]
USER nonroot:nonroot
ENTRYPOINT ["/metabase-bot"]
