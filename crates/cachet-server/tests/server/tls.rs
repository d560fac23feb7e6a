//! HTTPS with a certificate issued by a CA made in the test.

use std::sync::Arc;

use cachet_server::config::TlsPaths;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::util::{bytes, ephemeral, start};

#[test]
fn tls_round_trip_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, leaf.pem()).expect("cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("key");

    let mut config = ephemeral();
    config.tls = Some(TlsPaths { cert, key });
    let server = start(config);

    let ca_der = ca.der().to_vec();
    let roots =
        ureq::tls::RootCerts::Specific(Arc::new(vec![
            ureq::tls::Certificate::from_der(&ca_der).to_owned()
        ]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let url = format!("https://localhost:{}/ns/secret", server.addr.port());
    let data = bytes(9, 50_000);
    let status = agent.put(&url).send(&data[..]).expect("https put").status();
    assert_eq!(status.as_u16(), 201);
    let mut resp = agent.get(&url).call().expect("https get");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_vec().expect("body"), data);

    // A client that does not trust the CA is refused.
    let untrusting: ureq::Agent = ureq::Agent::config_builder().build().into();
    assert!(untrusting.get(&url).call().is_err());
}
