//! Certificates for the TLS tests: a private CA made in the test and a leaf it signed, so a
//! test shows both that a client trusting the CA connects and that one that does not is
//! refused.

use std::path::{Path, PathBuf};

/// A leaf certificate for `localhost` and `127.0.0.1` and the private CA that issued it.
pub struct TestCert {
    /// The leaf certificate (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
    /// The CA certificate (PEM), for a client's `ca_cert` / `CACHET_CA_CERT`.
    pub ca_pem: PathBuf,
    /// The CA certificate (DER), for an in-process client's root store.
    pub ca_der: Vec<u8>,
}

/// Issues a leaf for `localhost` and `127.0.0.1` from a fresh private CA, writing
/// `<name>-cert.pem`, `<name>-key.pem` and `<name>-ca.pem` into `dir`.
pub fn issue_cert(dir: &Path, name: &str) -> TestCert {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let cert = TestCert {
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
        ca_pem: dir.join(format!("{name}-ca.pem")),
        ca_der: ca.der().to_vec(),
    };
    std::fs::write(&cert.cert, leaf.pem()).expect("cert");
    std::fs::write(&cert.key, leaf_key.serialize_pem()).expect("key");
    std::fs::write(&cert.ca_pem, ca.pem()).expect("ca");
    cert
}
