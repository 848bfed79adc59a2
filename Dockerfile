# Multi-stage build: compile in the Rust image, run from a minimal non-root image.
#   docker build -t sesame .
#   docker run -p 8080:8080 -v sesame-data:/data \
#     -e SESAME_ISSUER=https://auth.example.com -e SESAME_MASTER_KEY=... sesame

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# The dependencies in a layer of their own: a change to Sesame's own code
# rebuilds only Sesame. (Sesame's fingerprints go, so the real sources below
# are always compiled, whatever their timestamps.)
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin sesame \
    && rm -rf src target/release/.fingerprint/sesame-* target/release/deps/sesame-* \
        target/release/deps/libsesame-* target/release/sesame target/release/sesame.d
COPY src src
COPY migrations migrations
COPY templates templates
COPY static static
COPY assets assets
RUN cargo build --release --locked --bin sesame \
    && mkdir -p /out/data \
    && cp target/release/sesame /out/sesame

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sesame /usr/local/bin/sesame
COPY config/sesame.example.toml /etc/sesame/sesame.example.toml
# /data holds the SQLite database (and the development master key, if any).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV SESAME_LISTEN=0.0.0.0:8080 \
    SESAME_DATABASE_URL=sqlite:///data/sesame.db
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/sesame", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/sesame"]
CMD ["serve"]
