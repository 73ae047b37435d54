//! Any input: no panic, deterministic answers, evidence taken from the client's text.

use arflow_replies::{Intent, Source, classify, client_text};
use jiff::civil::{Date, date};
use proptest::prelude::*;

fn reference() -> impl Strategy<Value = Date> {
    (0i64..3650).prop_map(|d| date(2024, 1, 1).checked_add(jiff::Span::new().days(d)).unwrap_or(date(2026, 3, 4)))
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Email), Just(Source::Voice)]
}

/// Text made of reply-like words, quote markers and odd characters, so the rules actually fire.
fn replyish() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "we",
        "will",
        "pay",
        "paid",
        "already",
        "the",
        "invoice",
        "is",
        "wrong",
        "stop",
        "calling",
        "on",
        "Friday",
        "15th",
        "next",
        "week",
        "end",
        "of",
        "month",
        "not",
        "don't",
        "unsubscribe",
        "half",
        "rest",
        "?",
        ".",
        ",",
        "\n",
        ">",
        "On Mon, Jan 5, 2026 at 9:00 AM X <x@y.example> wrote:",
        "-----Original Message-----",
        "--",
        "Thanks,",
        "ap@x.example",
        "20/03",
        "2026-03-20",
        "März",
        "mañana",
        "😀",
        "\u{202e}",
        "שלום",
        "\u{0}",
        "virement",
        "nächste",
        "Woche",
        "out of office",
        "$1,500",
        "now",
        "and",
        "the",
        "balance",
    ]);
    prop::collection::vec(words, 0..60).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>(), source in source(), reference in reference()) {
        let _ = client_text(&text);
        let c = classify(source, &text, reference);
        prop_assert!(c.intent == Intent::PromiseToPay || c.promised_date.is_none());
    }

    #[test]
    fn lossy_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), source in source(), reference in reference()) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = client_text(&text);
        let _ = classify(source, &text, reference);
    }

    #[test]
    fn replyish_text_is_deterministic_with_real_evidence(text in replyish(), source in source(), reference in reference()) {
        let first = classify(source, &text, reference);
        let second = classify(source, &text, reference);
        prop_assert_eq!(&first, &second);
        let own = arflow_replies::own_text(source, &text);
        prop_assert!(own.contains(&first.evidence), "evidence {:?} not in {:?}", first.evidence, own);
        prop_assert_eq!(client_text(&client_text(&text)), client_text(&text));
    }
}

#[test]
fn huge_and_empty_inputs() {
    let reference = date(2026, 3, 4);
    for text in ["", " ", "\n\n\n", "?", "👍", "\u{202e}\u{202e}", "\0"] {
        let c = classify(Source::Email, text, reference);
        assert!(matches!(c.intent, Intent::Acknowledged | Intent::Question), "{text:?}: {c:?}");
    }
    let big = "We will pay on Friday. ".repeat(200_000);
    let c = classify(Source::Email, &big, reference);
    assert_eq!(c.intent, Intent::PromiseToPay);
    let _ = client_text(&"> quoted\n".repeat(100_000));
}
