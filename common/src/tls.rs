//! The workspace's single rustls crypto provider (ring), installed once before any TLS use.

/// Installs ring as the process-wide rustls provider; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The async runtime of a tool that talks HTTP or to a cluster (two workers: the work is I/O),
/// with the crypto provider installed first.
#[cfg(feature = "runtime")]
pub fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            crate::Error::new(
                crate::ExitCode::Software,
                format!("cannot start the async runtime: {e}"),
            )
        })
}
