# syntax=docker/dockerfile:1

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Same build step as `make build`.
RUN go build -buildvcs=auto -o bin/boohpay ./cmd/boohpay

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates tzdata \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 boohpay \
	&& useradd --system --uid 10001 --gid boohpay --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin boohpay
COPY --from=build /src/bin/boohpay /usr/local/bin/boohpay
USER 10001:10001
ENV HTTP_ADDR=:3000
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/boohpay"]
CMD ["serve"]
