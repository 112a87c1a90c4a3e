# ad2entra in a small image: built with the Rust toolchain, run on distroless (glibc and
# CA certificates only; no shell, no package manager), as a non-root user.
#
#   docker build -t ad2entra:0.1.0 .
#   docker run --rm -p 8080:8080 --env-file ad2entra.env -v ad2entra-state:/var/lib/ad2entra \
#     ad2entra:0.1.0 run --policy-repo https://git.example.com/corp/ad2entra-policy.git
#
# Kubernetes: examples/kubernetes/. The state and git cache paths and the listener are set
# by environment below; each has a flag of the same meaning (`ad2entra run --help`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# git2 builds libgit2, libssh2 and OpenSSL from source (vendored: perl and make, both in
# this image); zlib is linked statically too, so the binary needs only glibc and libgcc.
ENV LIBZ_SYS_STATIC=1 CARGO_TERM_COLOR=never
COPY . .
RUN cargo build --release --locked --bin ad2entra \
 && install -D -m 0755 target/release/ad2entra /out/usr/local/bin/ad2entra \
 && mkdir -p /out/var/lib/ad2entra /out/var/cache/ad2entra

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/ad2entra /usr/local/bin/ad2entra
COPY --from=build --chown=65532:65532 /out/var/lib/ad2entra /var/lib/ad2entra
COPY --from=build --chown=65532:65532 /out/var/cache/ad2entra /var/cache/ad2entra
# distroless's "nonroot" user (65532)
USER 65532:65532
ENV AD2ENTRA_STATE=/var/lib/ad2entra/state.json \
    AD2ENTRA_GIT_CACHE=/var/cache/ad2entra/git \
    AD2ENTRA_LISTEN=0.0.0.0:8080
VOLUME ["/var/lib/ad2entra"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ad2entra"]
CMD ["run"]
