# The trainhook image: the `trainhook` binary on a distroless base, run as
# a non-root user. The chart passes the argument `run`.
#
#   docker build -t registry.example.com/trainhook:0.1.0 .
#
# NOTE: CI does not build this image, because its machines run no container
# engine; the tests run the same binary as a host process instead.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin trainhook

# glibc of Debian 12, as in the build stage; the nonroot variant runs as
# UID 65532, which the chart's runAsNonRoot accepts.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/trainhook /usr/local/bin/trainhook
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trainhook"]
