//! TLS on the one listener, by configuration: rustls with the ring provider, and ALPN
//! offering `h2` (gRPC) and `http/1.1` (grpc-web, REST, browsers), so every protocol keeps
//! sharing one port.

use std::path::Path;
use std::sync::Arc;

use crmbet_core::{Config, Error, Result, TlsFiles};
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// What the listener speaks on its port.
#[derive(Clone)]
pub enum Transport {
    /// Plain HTTP/1.1 and HTTP/2 with prior knowledge: local use, or behind a proxy that
    /// terminates TLS.
    Plain,
    /// TLS only, with the certificate of `CRMBET_TLS_CERT_FILE`.
    Tls(TlsAcceptor),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Plain => "Plain",
            Self::Tls(_) => "Tls",
        })
    }
}

impl Transport {
    /// TLS when the configuration names a certificate and key, plain when it names neither.
    /// Fails with the setting and file at fault when a file cannot be read or used.
    pub fn from_config(config: &Config) -> Result<Self> {
        match config.tls_files()? {
            None => Ok(Self::Plain),
            Some(files) => Ok(Self::Tls(TlsAcceptor::from(Arc::new(server_config(
                files,
            )?)))),
        }
    }

    /// The URL scheme clients use: `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Plain => "http",
            Self::Tls(_) => "https",
        }
    }
}

const CERTIFICATE_SETTING: &str = "CRMBET_TLS_CERT_FILE";
const KEY_SETTING: &str = "CRMBET_TLS_KEY_FILE";

fn server_config(files: TlsFiles<'_>) -> Result<ServerConfig> {
    let certificate_chain = read_certificate_chain(files.certificate_chain)?;
    let private_key = read_private_key(files.private_key)?;
    // Chosen explicitly, so no process-wide default provider is needed (or installed).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Internal(format!("TLS protocol versions: {error}")))?
        .with_no_client_auth()
        .with_single_cert(certificate_chain, private_key)
        .map_err(|error| {
            Error::invalid_argument(
                format!("{CERTIFICATE_SETTING} and {KEY_SETTING}"),
                format!(
                    "cannot serve the certificate in {} with the key in {}: {error}; the key \
                     must be the private key of the first certificate",
                    files.certificate_chain.display(),
                    files.private_key.display()
                ),
            )
        })?;
    // Clients pick: gRPC asks for h2, browsers and REST clients take either.
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server_config)
}

fn read_certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text = read_file(CERTIFICATE_SETTING, path)?;
    let certificate_chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid_pem(CERTIFICATE_SETTING, path, &error))?;
    if certificate_chain.is_empty() {
        return Err(Error::invalid_argument(
            CERTIFICATE_SETTING,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); it must hold the \
                 server certificate, then any intermediates",
                path.display()
            ),
        ));
    }
    Ok(certificate_chain)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text = read_file(KEY_SETTING, path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|error| match error {
        pem::Error::NoItemsFound => Error::invalid_argument(
            KEY_SETTING,
            format!(
                "{} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
                path.display()
            ),
        ),
        other => invalid_pem(KEY_SETTING, path, &other),
    })
}

fn read_file(setting: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        Error::invalid_argument(setting, format!("cannot read {}: {error}", path.display()))
    })
}

fn invalid_pem(setting: &str, path: &Path, error: &pem::Error) -> Error {
    Error::invalid_argument(
        setting,
        format!("{} is not valid PEM: {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    // Test helpers unwrap on purpose: the panic with the error is the failure report.
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A self-signed certificate for `localhost` and its key, as PEM.
    fn certificate_and_key() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    fn config_with_files(
        directory: &Path,
        certificate_pem: &str,
        key_pem: &str,
    ) -> (Config, String, String) {
        let certificate_file = directory.join("chain.pem");
        let key_file = directory.join("key.pem");
        std::fs::write(&certificate_file, certificate_pem).unwrap();
        std::fs::write(&key_file, key_pem).unwrap();
        let config = Config {
            tls_cert_file: Some(certificate_file.clone()),
            tls_key_file: Some(key_file.clone()),
            ..Config::default()
        };
        (
            config,
            certificate_file.display().to_string(),
            key_file.display().to_string(),
        )
    }

    fn error_of(config: &Config) -> String {
        match Transport::from_config(config) {
            Ok(transport) => panic!("expected an error, got {transport:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn plain_without_files_and_tls_with_a_matching_pair() {
        assert_eq!(
            Transport::from_config(&Config::default()).unwrap().scheme(),
            "http"
        );
        let directory = tempfile::tempdir().unwrap();
        let (certificate_pem, key_pem) = certificate_and_key();
        let (config, _, _) = config_with_files(directory.path(), &certificate_pem, &key_pem);
        assert_eq!(Transport::from_config(&config).unwrap().scheme(), "https");
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let directory = tempfile::tempdir().unwrap();
        let (certificate_pem, key_pem) = certificate_and_key();
        let (_, other_key_pem) = certificate_and_key();
        let broken_pem = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n";
        let cases = [
            // (certificate, key, the setting and file the error must name)
            ("no PEM here", key_pem.as_str(), "certificate"),
            (broken_pem, key_pem.as_str(), "certificate"),
            (key_pem.as_str(), key_pem.as_str(), "certificate"),
            (certificate_pem.as_str(), "no PEM here", "key"),
            (certificate_pem.as_str(), certificate_pem.as_str(), "key"),
            (certificate_pem.as_str(), other_key_pem.as_str(), "both"),
        ];
        for (certificate, key, at_fault) in cases {
            let (config, certificate_file, key_file) =
                config_with_files(directory.path(), certificate, key);
            let error = error_of(&config);
            let expected: &[&str] = match at_fault {
                "certificate" => &["CRMBET_TLS_CERT_FILE", &certificate_file],
                "key" => &["CRMBET_TLS_KEY_FILE", &key_file],
                _ => &[&certificate_file, &key_file],
            };
            for part in expected {
                assert!(error.contains(part), "{at_fault}: {error}");
            }
        }
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let directory = tempfile::tempdir().unwrap();
        let (certificate_pem, key_pem) = certificate_and_key();
        let (mut config, _, _) = config_with_files(directory.path(), &certificate_pem, &key_pem);
        let missing = directory.path().join("missing.pem");
        config.tls_key_file = Some(missing.clone());
        let error = error_of(&config);
        assert!(
            error.contains("CRMBET_TLS_KEY_FILE")
                && error.contains("cannot read")
                && error.contains(&missing.display().to_string()),
            "{error}"
        );
    }
}
