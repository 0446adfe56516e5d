//! HTTPS for `serve`: rustls with the aws-lc-rs provider (the one reqwest already uses), from a
//! PEM certificate chain and key. Errors name the file and what is wrong with it, never key bytes.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The rustls server configuration of `tls`.
pub(crate) fn server_config(tls: &TlsConfig) -> io::Result<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(|e| invalid(format!("tls.cert {}: {e}", tls.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("tls.cert {}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!("tls.cert {}: no PEM certificate in it", tls.cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| invalid(format!("tls.key {}: no usable PEM private key ({e})", tls.key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("tls.cert/tls.key do not make a usable pair: {e}")))
}
