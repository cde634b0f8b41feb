//! Test certificates, generated fresh for each test process (ECDSA P-256, signed with
//! SHA-256): a CA; server certificates for `localhost` + 127.0.0.1, for a wrong name, and an
//! expired one, all signed by the CA; a second, unrelated CA; and client certificates whose
//! common name is a user name. Everything is PEM, ready for `ClusterTls` and for files named
//! by `sslrootcert`, `sslcert` and `sslkey`.
//!
//! The library's TLS unit tests include this same file.
#![allow(dead_code)]

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The name in [`TestCerts::wrong_name`].
pub const WRONG_NAME: &str = "wrong-name.example.invalid";

/// A certificate and its private key (PKCS #8), as PEM.
#[derive(Debug, Clone)]
pub struct CertAndKey {
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

/// The whole set; see the module documentation.
pub struct TestCerts {
    /// The CA every certificate below except `other_ca_pem` is signed by.
    pub ca_pem: String,
    /// For DNS `localhost` and IP 127.0.0.1.
    pub server: CertAndKey,
    /// For [`WRONG_NAME`] only.
    pub wrong_name: CertAndKey,
    /// For `localhost` and 127.0.0.1, but valid only in 2000.
    pub expired: CertAndKey,
    /// A second CA that signed nothing here.
    pub other_ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(common_name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), Issuer::new(params, key))
}

/// A calendar date: year, month, day.
type Ymd = (i32, u8, u8);

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    common_name: &str,
    purpose: ExtendedKeyUsagePurpose,
    valid: Option<(Ymd, Ymd)>,
) -> CertAndKey {
    let key = KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).expect("certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    if let Some(((y0, m0, d0), (y1, m1, d1))) = valid {
        params.not_before = date_time_ymd(y0, m0, d0);
        params.not_after = date_time_ymd(y1, m1, d1);
    }
    let cert = params.signed_by(&key, issuer).expect("certificate");
    CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl TestCerts {
    /// Generates the set (a few milliseconds).
    pub fn generate() -> TestCerts {
        let (ca_pem, issuer) = ca("pgpool test CA");
        let (other_ca_pem, _) = ca("pgpool unrelated test CA");
        let server_auth = || ExtendedKeyUsagePurpose::ServerAuth;
        let server = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            server_auth(),
            None,
        );
        let wrong_name = leaf(&issuer, &[WRONG_NAME], WRONG_NAME, server_auth(), None);
        let expired = leaf(
            &issuer,
            &["localhost", "127.0.0.1"],
            "localhost",
            server_auth(),
            Some(((2000, 1, 1), (2000, 12, 31))),
        );
        TestCerts {
            ca_pem,
            server,
            wrong_name,
            expired,
            other_ca_pem,
            issuer,
        }
    }

    /// A client certificate with common name `user` (what `cert` authentication compares
    /// with the user name), signed by the CA.
    pub fn client(&self, user: &str) -> CertAndKey {
        leaf(
            &self.issuer,
            &[],
            user,
            ExtendedKeyUsagePurpose::ClientAuth,
            None,
        )
    }
}
