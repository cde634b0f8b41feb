//! RFC 5929 `tls-server-end-point`: the hash of the server's certificate, with the hash
//! function chosen from the certificate's signature algorithm (§4.1): SHA-256 when the
//! signature uses MD5, SHA-1 or SHA-256; otherwise the signature's own hash (SHA-384,
//! SHA-512). Signature algorithms with no single hash (Ed25519, Ed448) or an unsupported one
//! (SHA-224) give no channel-binding data, as with PostgreSQL's server.
//!
//! Only the outer layers of the certificate are read, by a minimal DER walk:
//! `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }`.

use ring::digest;

/// DER of the OID `1.2.840.113549.1.1` (PKCS #1) without its last arc.
const PKCS1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// `1.2.840.10045.4.3` (ECDSA with SHA-2) without its last arc.
const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
/// `1.2.840.10045.4.1`: ecdsa-with-SHA1.
const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// `1.2.840.10040.4.3`: dsa-with-sha1.
const DSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03];
/// `2.16.840.1.101.3.4.3` (NIST signature algorithms) without its last arc.
const NIST_SIG: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
/// `2.16.840.1.101.3.4.2` (NIST hash algorithms) without its last arc.
const NIST_HASH: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
/// `1.3.14.3.2.29`: sha1WithRSASignature (OIW).
const OIW_SHA1_RSA: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1d];
/// `1.3.14.3.2.26`: SHA-1.
const OIW_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_OID: u8 = 0x06;
/// `[0]` constructed, context-specific (RSASSA-PSS `hashAlgorithm`).
const TAG_CONTEXT_0: u8 = 0xa0;

/// The hash of RFC 5929 §4.1 over `cert_der`, or `None` when the certificate cannot be read
/// or its signature algorithm has no defined hash.
pub(super) fn certificate_hash(cert_der: &[u8]) -> Option<Vec<u8>> {
    let algorithm = hash_for(cert_der)?;
    Some(digest::digest(algorithm, cert_der).as_ref().to_vec())
}

/// The digest RFC 5929 prescribes for this certificate.
fn hash_for(cert_der: &[u8]) -> Option<&'static digest::Algorithm> {
    let (certificate, _) = expect(cert_der, TAG_SEQUENCE)?;
    let (_tbs, rest) = expect(certificate, TAG_SEQUENCE)?;
    let (algorithm_identifier, _) = expect(rest, TAG_SEQUENCE)?;
    let (oid, parameters) = expect(algorithm_identifier, TAG_OID)?;
    match Hash::of_signature(oid)? {
        Hash::Pss => pss_hash(parameters)?.end_point(),
        hash => hash.end_point(),
    }
}

/// The hash inside a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Md5,
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    /// RSASSA-PSS: the hash is in the parameters.
    Pss,
}

impl Hash {
    /// The hash of a signature-algorithm OID (content octets), if it is one we know.
    fn of_signature(oid: &[u8]) -> Option<Hash> {
        if let Some(arc) = last_arc(oid, PKCS1) {
            return match arc {
                4 => Some(Hash::Md5),
                5 => Some(Hash::Sha1),
                10 => Some(Hash::Pss),
                11 => Some(Hash::Sha256),
                12 => Some(Hash::Sha384),
                13 => Some(Hash::Sha512),
                14 => Some(Hash::Sha224),
                _ => None,
            };
        }
        if let Some(arc) = last_arc(oid, ECDSA_SHA2) {
            return match arc {
                1 => Some(Hash::Sha224),
                2 => Some(Hash::Sha256),
                3 => Some(Hash::Sha384),
                4 => Some(Hash::Sha512),
                _ => None,
            };
        }
        if let Some(arc) = last_arc(oid, NIST_SIG) {
            // dsa-with-sha224/256 (1, 2), ecdsa-with-sha3-* and others follow; only DSA's
            // SHA-2 variants have a hash ring provides.
            return match arc {
                1 => Some(Hash::Sha224),
                2 => Some(Hash::Sha256),
                _ => None,
            };
        }
        if oid == ECDSA_SHA1 || oid == DSA_SHA1 || oid == OIW_SHA1_RSA {
            return Some(Hash::Sha1);
        }
        None
    }

    /// The hash of a hash-algorithm OID (RSASSA-PSS parameters).
    fn of_digest(oid: &[u8]) -> Option<Hash> {
        if oid == OIW_SHA1 {
            return Some(Hash::Sha1);
        }
        match last_arc(oid, NIST_HASH)? {
            1 => Some(Hash::Sha256),
            2 => Some(Hash::Sha384),
            3 => Some(Hash::Sha512),
            4 => Some(Hash::Sha224),
            _ => None,
        }
    }

    /// RFC 5929 §4.1: MD5 and SHA-1 are replaced by SHA-256.
    fn end_point(self) -> Option<&'static digest::Algorithm> {
        match self {
            Hash::Md5 | Hash::Sha1 | Hash::Sha256 => Some(&digest::SHA256),
            Hash::Sha384 => Some(&digest::SHA384),
            Hash::Sha512 => Some(&digest::SHA512),
            Hash::Sha224 | Hash::Pss => None,
        }
    }
}

/// `RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] HashAlgorithm DEFAULT sha1, … }`.
fn pss_hash(parameters: &[u8]) -> Option<Hash> {
    let (params, _) = expect(parameters, TAG_SEQUENCE)?;
    match tlv(params) {
        Some((TAG_CONTEXT_0, explicit, _)) => {
            let (hash_algorithm, _) = expect(explicit, TAG_SEQUENCE)?;
            let (oid, _) = expect(hash_algorithm, TAG_OID)?;
            Hash::of_digest(oid)
        }
        _ => Some(Hash::Sha1),
    }
}

/// The last arc of `oid` when it is `prefix` plus one single-byte arc.
fn last_arc(oid: &[u8], prefix: &[u8]) -> Option<u8> {
    match oid.strip_prefix(prefix)? {
        [arc] if *arc < 0x80 => Some(*arc),
        _ => None,
    }
}

/// The content of the element at the start of `input` when its tag is `tag`, and the rest.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match tlv(input)? {
        (t, content, rest) if t == tag => Some((content, rest)),
        _ => None,
    }
}

/// One DER element: (tag, content, rest). Single-byte tags and definite lengths only,
/// which is all DER allows for the elements read here.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > std::mem::size_of::<usize>() || rest.len() < octets {
            return None;
        }
        let (len_bytes, after) = rest.split_at(octets);
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: `SEQUENCE { SEQUENCE {}, SEQUENCE { OID, params } }`.
    fn skeleton(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let mut alg = vec![TAG_OID, oid.len() as u8];
        alg.extend_from_slice(oid);
        alg.extend_from_slice(params);
        let mut body = vec![TAG_SEQUENCE, 0, TAG_SEQUENCE, alg.len() as u8];
        body.extend_from_slice(&alg);
        let mut cert = vec![TAG_SEQUENCE, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    fn oid(prefix: &[u8], arc: u8) -> Vec<u8> {
        let mut v = prefix.to_vec();
        v.push(arc);
        v
    }

    #[test]
    fn hash_follows_rfc5929() {
        let len = |cert: Vec<u8>| certificate_hash(&cert).map(|h| h.len());
        assert_eq!(len(skeleton(&oid(PKCS1, 4), &[0x05, 0x00])), Some(32)); // MD5 → SHA-256
        assert_eq!(len(skeleton(&oid(PKCS1, 5), &[0x05, 0x00])), Some(32)); // SHA-1 → SHA-256
        assert_eq!(len(skeleton(&oid(PKCS1, 11), &[0x05, 0x00])), Some(32));
        assert_eq!(len(skeleton(&oid(PKCS1, 12), &[0x05, 0x00])), Some(48));
        assert_eq!(len(skeleton(&oid(PKCS1, 13), &[0x05, 0x00])), Some(64));
        assert_eq!(len(skeleton(&oid(ECDSA_SHA2, 2), &[])), Some(32));
        assert_eq!(len(skeleton(&oid(ECDSA_SHA2, 3), &[])), Some(48));
        assert_eq!(len(skeleton(&oid(ECDSA_SHA2, 4), &[])), Some(64));
        assert_eq!(len(skeleton(ECDSA_SHA1, &[])), Some(32));
        assert_eq!(len(skeleton(&[0x2b, 0x65, 0x70], &[])), None); // Ed25519
        assert_eq!(len(skeleton(&oid(PKCS1, 14), &[0x05, 0x00])), None); // SHA-224
        assert_eq!(certificate_hash(b"not a certificate"), None);
    }

    #[test]
    fn pss_uses_the_hash_in_its_parameters() {
        let sha384 = oid(NIST_HASH, 2);
        let mut hash_alg = vec![
            TAG_SEQUENCE,
            sha384.len() as u8 + 2,
            TAG_OID,
            sha384.len() as u8,
        ];
        hash_alg.extend_from_slice(&sha384);
        let mut explicit = vec![TAG_CONTEXT_0, hash_alg.len() as u8];
        explicit.extend_from_slice(&hash_alg);
        let mut params = vec![TAG_SEQUENCE, explicit.len() as u8];
        params.extend_from_slice(&explicit);
        let cert = skeleton(&oid(PKCS1, 10), &params);
        assert_eq!(certificate_hash(&cert).map(|h| h.len()), Some(48));
        // Absent hashAlgorithm: SHA-1, so SHA-256.
        let cert = skeleton(&oid(PKCS1, 10), &[TAG_SEQUENCE, 0]);
        assert_eq!(certificate_hash(&cert).map(|h| h.len()), Some(32));
    }

    #[test]
    fn long_form_lengths() {
        let mut input = vec![0x04, 0x82, 0x01, 0x00];
        input.extend(std::iter::repeat_n(7u8, 256));
        input.push(0xff);
        let (tag, content, rest) = tlv(&input).unwrap();
        assert_eq!((tag, content.len(), rest), (0x04, 256, &[0xff][..]));
        assert!(tlv(&[0x04, 0x82, 0x01]).is_none());
        assert!(tlv(&[0x04, 0x05, 1, 2]).is_none());
    }
}
