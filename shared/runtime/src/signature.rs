//! Signatures arflow checks or makes: Stripe webhooks (exactly as Stripe signs them),
//! the signed one-click unsubscribe tokens in every reminder, and Twilio's
//! `X-Twilio-Signature` on telephony callbacks.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// Stripe's default tolerance between the signed timestamp and now.
pub const STRIPE_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("no v1 signature matches any of the firm's webhook secrets")]
    NoMatch,
    #[error("the signed timestamp is {age_secs} s away from now (tolerance {tolerance_secs} s)")]
    Stale { age_secs: i64, tolerance_secs: i64 },
}

fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// `t=<timestamp>,v1=<hex hmac-sha256 of "<timestamp>.<payload>">`, as Stripe sends it.
pub fn stripe_signature_header(secret: &str, payload: &[u8], timestamp: i64) -> String {
    let ts = timestamp.to_string();
    format!("t={ts},v1={}", hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b".", payload]))
}

/// The parts of a `Stripe-Signature` header: its timestamp and `v1` signatures.
fn parse_stripe_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (k, v) = item.trim().split_once('=').ok_or(SignatureError::Malformed("expected key=value pairs"))?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed("t is not a number"))?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed("v1 is not hex"))?),
            _ => {} // v0 and future schemes are ignored, as Stripe's libraries do.
        }
    }
    let ts = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    Ok((ts, signatures))
}

/// What can be checked of a `Stripe-Signature` header before the body is read: its shape and
/// that its timestamp is within `tolerance_secs` of `now`. [`verify_stripe_signature`] still
/// decides.
pub fn precheck_stripe_signature(header: &str, now: i64, tolerance_secs: i64) -> Result<(), SignatureError> {
    let (ts, _) = parse_stripe_header(header)?;
    let age = now - ts;
    if age.abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age, tolerance_secs });
    }
    Ok(())
}

/// Verifies a `Stripe-Signature` header: any `v1` entry may match any of `secrets`
/// (so secrets can rotate), compared in constant time, timestamp within `tolerance_secs`
/// of `now` (unix seconds) either way. Returns the signed timestamp.
pub fn verify_stripe_signature(
    secrets: &[&str],
    header: &str,
    payload: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let (ts, signatures) = parse_stripe_header(header)?;
    let ts_text = ts.to_string();
    let matched = secrets.iter().any(|secret| {
        let expected = hmac_hex(secret.as_bytes(), &[ts_text.as_bytes(), b".", payload]);
        let expected = hex::decode(expected).unwrap_or_default();
        signatures.iter().any(|sig| bool::from(sig.as_slice().ct_eq(expected.as_slice())))
    });
    if !matched {
        return Err(SignatureError::NoMatch);
    }
    let age = now - ts;
    if age.abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age, tolerance_secs });
    }
    Ok(ts)
}

/// A token naming the firm and contact, signed with the shared unsubscribe secret:
/// `<base64url(firm_id ‖ contact_id)>.<base64url(hmac)>`.
pub fn unsubscribe_token(secret: &str, firm_id: Uuid, contact_id: Uuid) -> String {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(firm_id.as_bytes());
    body.extend_from_slice(contact_id.as_bytes());
    let mac = hex::decode(hmac_hex(secret.as_bytes(), &[b"unsubscribe:", &body])).unwrap_or_default();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(&body), URL_SAFE_NO_PAD.encode(mac))
}

/// Checks a token from [`unsubscribe_token`]; returns `(firm_id, contact_id)`.
pub fn verify_unsubscribe_token(secret: &str, token: &str) -> Result<(Uuid, Uuid), SignatureError> {
    let (body, mac) = token.split_once('.').ok_or(SignatureError::Malformed("token has no signature"))?;
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SignatureError::Malformed("token body is not base64url"))?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| SignatureError::Malformed("token signature is not base64url"))?;
    if body.len() != 32 {
        return Err(SignatureError::Malformed("token body has the wrong length"));
    }
    let expected = hex::decode(hmac_hex(secret.as_bytes(), &[b"unsubscribe:", &body])).unwrap_or_default();
    if !bool::from(mac.as_slice().ct_eq(expected.as_slice())) {
        return Err(SignatureError::NoMatch);
    }
    let firm = Uuid::from_slice(&body[..16]).map_err(|_| SignatureError::Malformed("bad firm id"))?;
    let contact = Uuid::from_slice(&body[16..]).map_err(|_| SignatureError::Malformed("bad contact id"))?;
    Ok((firm, contact))
}

/// Twilio's `X-Twilio-Signature` for a form POST: base64 of HMAC-SHA1 (key: the account's
/// auth token) over the full URL Twilio called (query string included) followed by every POST
/// parameter as name then value, sorted by name. A repeated name contributes each value, in order.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut mac = match Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a callback's `X-Twilio-Signature` in constant time.
pub fn verify_twilio_signature(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let expected = twilio_signature(auth_token, url, params);
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(header.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_signature_round_trip_rotation_and_tolerance() {
        let payload = br#"{"id":"evt_1","object":"event"}"#;
        let header = stripe_signature_header("whsec_new", payload, 1_700_000_000);
        assert_eq!(
            verify_stripe_signature(&["whsec_old", "whsec_new"], &header, payload, 1_700_000_100, 300),
            Ok(1_700_000_000)
        );
        assert_eq!(
            verify_stripe_signature(&["whsec_old"], &header, payload, 1_700_000_100, 300),
            Err(SignatureError::NoMatch)
        );
        assert!(matches!(
            verify_stripe_signature(&["whsec_new"], &header, payload, 1_700_000_301, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify_stripe_signature(&["whsec_new"], &header, b"tampered", 1_700_000_000, 300),
            Err(SignatureError::NoMatch)
        );
        // Several v1 entries: any may match.
        let two = format!("{header},v1={}", "00".repeat(32));
        assert!(verify_stripe_signature(&["whsec_new"], &two, payload, 1_700_000_000, 300).is_ok());
        assert!(matches!(
            verify_stripe_signature(&["s"], "garbage", payload, 0, 300),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn matches_stripes_published_algorithm() {
        // HMAC-SHA256("whsec_test", "1234567890.{}") computed independently (openssl dgst -sha256 -hmac).
        let header = stripe_signature_header("whsec_test", b"{}", 1234567890);
        assert_eq!(header, "t=1234567890,v1=0881dfb73473543214f76e43477681170399fb4daf26a614993e67e8f7681623");
    }

    #[test]
    fn unsubscribe_tokens_verify_and_resist_tampering() {
        let (f, c) = (Uuid::now_v7(), Uuid::now_v7());
        let t = unsubscribe_token("k", f, c);
        assert_eq!(verify_unsubscribe_token("k", &t), Ok((f, c)));
        assert!(verify_unsubscribe_token("other", &t).is_err());
        let mut bad = t.clone();
        bad.insert(3, 'A');
        assert!(verify_unsubscribe_token("k", &bad).is_err());
    }

    /// Twilio's documented example (auth token 12345), also what its RequestValidator computes.
    #[test]
    fn twilio_signature_matches_the_documented_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("From", "+14158675310"),
            ("Digits", "1234"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(twilio_signature("12345", url, &params), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(verify_twilio_signature("12345", url, &params, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
        assert!(!verify_twilio_signature("12346", url, &params, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
        let mut tampered = params.clone();
        tampered[4].1 = "9999".into();
        assert!(!verify_twilio_signature("12345", url, &tampered, "GvWf1cFY/Q7PnoempGyD5oXAezc="));
        assert!(!verify_twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        ));
    }
}
