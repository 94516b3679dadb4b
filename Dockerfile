# Builds the shipped binary (profile `dist`: fat LTO) and runs it on a slim base.
#   docker build -t pipe .
#   docker run --rm -v /var/log:/var/log:ro -v pipe-data:/var/lib/pipe \
#     -v $PWD/topologies:/etc/pipe pipe --topology /etc/pipe/edge.toml
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --bin pipe

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/dist/pipe /usr/local/bin/pipe
VOLUME /var/lib/pipe
ENV PIPE_DATA_DIR=/var/lib/pipe
ENTRYPOINT ["/usr/local/bin/pipe"]
CMD ["--help"]
