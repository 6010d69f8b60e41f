//! The workspace's single rustls crypto provider (ring), installed once before any TLS use.

/// Installs ring as the process-wide rustls provider; harmless when already installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
