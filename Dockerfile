# Build stage: a release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY testkit ./testkit
COPY loadtest ./loadtest
COPY migrations ./migrations
COPY templates ./templates
RUN cargo build --release --locked

# Runtime stage: a small image running as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 --home /data hub \
    && mkdir -p /data && chown hub /data
COPY --from=build /src/target/release/customer-list /usr/local/bin/customer-list
USER hub
WORKDIR /data
ENV CUSTOMER_LIST_LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["customer-list"]
CMD ["serve"]
