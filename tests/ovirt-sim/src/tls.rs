//! A CA made at start and a server certificate for 127.0.0.1 and localhost signed by it; the CA
//! goes to ca.pem so clients can verify the simulator like a real engine (`--ca-file`).

use common::{Error, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};

pub struct Tls {
    pub ca_file: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn generate(dir: &Path) -> Result<Tls> {
    let err = |e: rcgen::Error| Error::config(format!("TLS certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "ovirt-sim");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ovirt-sim engine CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ovirt-sim");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).map_err(err)?;

    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("{}: {e}", dir.display())))?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem())
        .map_err(|e| Error::io(format!("{}: {e}", ca_file.display())))?;
    Ok(Tls {
        ca_file,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}
