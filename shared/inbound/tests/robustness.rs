//! Whatever bytes arrive, parsing returns (Ok or Err) and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use arflow_inbound::{Date, parse};
use proptest::prelude::*;
use std::path::PathBuf;

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mime");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn reference() -> Date {
    Date::new(2026, 3, 1).unwrap()
}

/// A byte flip, an insertion, a deletion or a truncation.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..200).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x ^= b | 1;
                }
            }
            Mutation::Insert(i, b) => {
                let at = (i % len).min(bytes.len());
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = (i % len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

/// Tokens that steer the parser into its interesting paths (MIME, reports, HTML, quotes).
fn mail_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n".to_vec()),
        Just(b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.".to_vec()),
        Just(b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<div class=3D\"gmail_quote\"><blockquote><p>&#x".to_vec()),
        Just(b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29y".to_vec()),
        Just("On Tue, Mar 3, 2026 at 9:14 AM X <x@y> wrote:\n> \u{feff}quoted\n-- \n".as_bytes().to_vec()),
        Just(b"Subject: =?utf-8?B?w6k=?= =?iso-8859-1?Q?J=FC?=\r\n".to_vec()),
        Just(b"Auto-Submitted: auto-replied\r\nFrom: MAILER-DAEMON@x\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = parse(&bytes, reference());
    }

    #[test]
    fn mail_like_bytes_never_panic(parts in prop::collection::vec(mail_fragment(), 0..24)) {
        let mut bytes = b"From: a@b.example\r\nTo: reply+0123456789abcdef@in.example\r\n".to_vec();
        for p in parts {
            bytes.extend(p);
        }
        let _ = parse(&bytes, reference());
    }

    #[test]
    fn mutated_corpus_messages_never_panic(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus();
        let original = files[which.index(files.len())].clone();
        let _ = parse(&apply(original, &mutations), reference());
    }
}

#[test]
fn not_a_message_is_an_error() {
    assert!(parse(b"", reference()).is_err());
    assert!(parse(b"   \r\n", reference()).is_err());
}

#[test]
fn every_corpus_truncation_parses_without_panic() {
    for file in corpus() {
        for cut in (0..file.len()).step_by(97) {
            let _ = parse(&file[..cut], reference());
        }
    }
}
