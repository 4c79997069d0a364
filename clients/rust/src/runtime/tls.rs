//! TLS. With the default `rustls` feature: rustls with the `ring` crypto provider (no CMake, no
//! OpenSSL; aws-lc-rs, reqwest's own default, needs a longer C build) and the operating system's
//! certificate verifier, set up for this client only (no process-wide default provider is
//! installed). With `native-tls` instead: the platform's TLS library.

use super::BuildError;

/// Makes `builder` speak HTTPS, trusting the system's roots plus `extra_roots` (DER).
#[cfg(feature = "rustls")]
pub(crate) fn configure(
    builder: reqwest::ClientBuilder,
    extra_roots: &[Vec<u8>],
) -> Result<reqwest::ClientBuilder, BuildError> {
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;

    let tls = |e: rustls::Error| BuildError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = extra_roots
        .iter()
        .map(|der| CertificateDer::from(der.clone()));
    let verifier = if extra_roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone()).map_err(tls)?
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(tls)?
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(builder.tls_backend_preconfigured(config))
}

#[cfg(all(feature = "native-tls", not(feature = "rustls")))]
pub(crate) fn configure(
    mut builder: reqwest::ClientBuilder,
    extra_roots: &[Vec<u8>],
) -> Result<reqwest::ClientBuilder, BuildError> {
    builder = builder.tls_backend_native();
    for der in extra_roots {
        let cert =
            reqwest::Certificate::from_der(der).map_err(|e| BuildError::Tls(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// Without a TLS feature the client speaks plain HTTP only.
#[cfg(not(any(feature = "rustls", feature = "native-tls")))]
pub(crate) fn configure(
    builder: reqwest::ClientBuilder,
    extra_roots: &[Vec<u8>],
) -> Result<reqwest::ClientBuilder, BuildError> {
    if extra_roots.is_empty() {
        Ok(builder)
    } else {
        Err(BuildError::Tls(
            "root certificates need the `rustls` or `native-tls` feature".into(),
        ))
    }
}
