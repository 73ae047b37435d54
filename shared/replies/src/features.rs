//! The features the learned model reads: hashed word unigrams and bigrams, character 3- to
//! 5-grams of each word (so typos, inflections and compounds in seven languages still share
//! features), and the channel. The same code serves training and inference, so the two can never
//! disagree on what a feature is.
//!
//! Text is lower-cased and accent-folded (as the rules see it), digits become `0` (a date or an
//! amount is a shape, not a value) and only the first [`MAX_FEATURE_BYTES`] count.

use crate::Source;
use crate::normalize::fold_char;

/// A client's own reply is rarely longer; the rest is usually a pasted thread or a disclaimer.
pub const MAX_FEATURE_BYTES: usize = 3_000;

/// Shortest and longest character n-gram taken inside a word (word boundaries included).
const CHAR_MIN: usize = 3;
const CHAR_MAX: usize = 5;

/// Feature kinds, mixed into the hash so a word and an n-gram with the same bytes differ.
const KIND_WORD: u32 = 0x9e37_79b9;
const KIND_BIGRAM: u32 = 0x85eb_ca6b;
const KIND_CHAR: u32 = 0xc2b2_ae35;
const KIND_META: u32 = 0x27d4_eb2f;
const KIND_NEGATED: u32 = 0x1656_67b1;

/// Words that negate what follows ("don't take me off", "je ne veux pas me désabonner", "bitte
/// nicht abmelden"): the next [`NEGATION_SCOPE`] words also count as negated features, so "take me
/// off" and "don't take me off" stop looking alike.
const NEGATORS: &[&str] = &[
    "not", "don't", "dont", "do", "never", "no", "can't", "cannot", "won't", "isn't", "wasn't", "aren't", "didn't",
    "doesn't", "haven't", "without", "ne", "pas", "jamais", "nicht", "kein", "keine", "nie", "niemals", "nunca", "nao",
    "non", "niet", "geen", "nooit", "ni", "nem", "mai",
];
const NEGATION_SCOPE: usize = 3;

/// FNV-1a over `bytes`, seeded by the feature kind.
fn hash(kind: u32, bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ kind;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // Final avalanche, so the low bits used as a bucket index mix every byte.
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h
}

/// One word of the reply: its folded form, where it sits in the original text, and whether a
/// sentence ends right after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub ends_sentence: bool,
}

/// Lower-case, accent-folded words of `text` (letters, digits as `0`, apostrophes inside words).
pub fn words(text: &str) -> Vec<String> {
    tokens(text).into_iter().map(|w| w.text).collect()
}

/// The words of `text` with their positions (only the first [`MAX_FEATURE_BYTES`] count).
pub fn tokens(text: &str) -> Vec<Word> {
    let mut out: Vec<Word> = Vec::new();
    let mut word = String::new();
    let mut start = 0;
    let mut buf = String::new();
    let close = |word: &mut String, out: &mut Vec<Word>, start: usize, end: usize| {
        let w = std::mem::take(word);
        let w = w.trim_end_matches('\'');
        if !w.is_empty() {
            out.push(Word { text: w.to_string(), start, end, ends_sentence: false });
        }
    };
    let mut last = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if at + c.len_utf8() > MAX_FEATURE_BYTES {
            break;
        }
        last = at + c.len_utf8();
        // A full stop ends a sentence only before a space or the end ("ap@x.example", "1.250", "20.03").
        let full_stop = c == '.' && chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if full_stop || matches!(c, '!' | '?' | ';' | '\n' | '¿' | '¡') {
            close(&mut word, &mut out, start, at);
            if let Some(w) = out.last_mut() {
                w.ends_sentence = true;
            }
            continue;
        }
        buf.clear();
        fold_char(c, &mut buf);
        for f in buf.chars() {
            let is_word = f.is_alphanumeric() || (f == '\'' && !word.is_empty());
            if is_word {
                if word.is_empty() {
                    start = at;
                }
                word.push(if f.is_ascii_digit() { '0' } else { f });
            } else if !word.is_empty() {
                close(&mut word, &mut out, start, at);
            }
        }
    }
    close(&mut word, &mut out, start, last);
    if let Some(w) = out.last_mut() {
        w.ends_sentence = true;
    }
    out
}

/// The hashed features of one reply: each value is a full 32-bit hash; the model maps it to a
/// bucket. Repeated features are kept (a word said twice counts twice).
pub fn extract(source: Source, text: &str) -> Vec<u32> {
    extract_with_segments(source, text).0
}

/// A part of the reply read on its own: byte range in the text, and its features.
#[derive(Clone, Debug)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub features: Vec<u32>,
}

/// Longest segment, in words, before a long unpunctuated stretch is read in half-overlapping
/// windows instead.
pub const SEGMENT_WORDS: usize = 12;
/// Segments read per reply (a long letter's first ones).
pub const MAX_SEGMENTS: usize = 24;

/// The reply's features, and (when it has more than one) its segments': its sentences and lines,
/// and overlapping windows of [`SEGMENT_WORDS`] words inside a longer sentence (a call transcript
/// has no punctuation), so a clause asking to stop is read on its own. At most [`MAX_SEGMENTS`].
/// Each word's features are computed once and shared by the whole and its segments.
pub fn extract_with_segments(source: Source, text: &str) -> (Vec<u32>, Vec<Segment>) {
    let ws = tokens(text);
    let channel = hash(KIND_META, source.as_str().as_bytes());
    // Per word: its own features (word, negated word, character n-grams), and the bigram with the
    // word before it (left out when a segment starts at this word).
    // Each word's own features live in one flat vector: word i's are `flat[bounds[i]..bounds[i + 1]]`.
    let mut flat: Vec<u32> = Vec::with_capacity(ws.len() * 14);
    let mut bounds: Vec<usize> = Vec::with_capacity(ws.len() + 1);
    bounds.push(0);
    let mut bigram: Vec<Option<u32>> = Vec::with_capacity(ws.len());
    let mut negated = 0usize;
    let mut padded = Vec::with_capacity(64);
    let mut pair = Vec::with_capacity(64);
    for (i, w) in ws.iter().enumerate() {
        flat.push(hash(KIND_WORD, w.text.as_bytes()));
        if negated > 0 {
            flat.push(hash(KIND_NEGATED, w.text.as_bytes()));
            negated -= 1;
        }
        // "do" negates only as "do not"; the others on their own.
        if NEGATORS.contains(&w.text.as_str()) && (w.text != "do" || ws.get(i + 1).is_some_and(|n| n.text == "not")) {
            negated = NEGATION_SCOPE;
        }
        char_grams(w.text.as_bytes(), &mut padded, &mut flat);
        bounds.push(flat.len());
        bigram.push(i.checked_sub(1).and_then(|p| ws.get(p)).map(|prev| {
            pair.clear();
            pair.extend_from_slice(prev.text.as_bytes());
            pair.push(b' ');
            pair.extend_from_slice(w.text.as_bytes());
            hash(KIND_BIGRAM, &pair)
        }));
    }
    let has_question = text.contains('?') || text.contains('¿');
    let assemble = |from: usize, to: usize, question: bool| {
        let mut out = Vec::with_capacity((to - from) * 14 + 4);
        out.push(channel);
        out.push(hash(KIND_META, size_bucket(to - from)));
        if question {
            out.push(hash(KIND_META, b"has:question_mark"));
        }
        for i in from..to {
            out.extend_from_slice(&flat[bounds[i]..bounds[i + 1]]);
            if i > from {
                out.extend(bigram[i]);
            }
        }
        out
    };
    let whole = assemble(0, ws.len(), has_question);
    let mut segments = Vec::new();
    let mut s = 0;
    while s < ws.len() && segments.len() < MAX_SEGMENTS {
        let e = (s..ws.len()).find(|&i| ws[i].ends_sentence).map_or(ws.len(), |i| i + 1);
        let mut w = s;
        loop {
            let end = (w + SEGMENT_WORDS).min(e);
            let question = text.get(ws[end - 1].end..).is_some_and(|rest| rest.trim_start().starts_with(['?', '¿']));
            segments.push(Segment { start: ws[w].start, end: ws[end - 1].end, features: assemble(w, end, question) });
            if end >= e || segments.len() >= MAX_SEGMENTS {
                break;
            }
            w += SEGMENT_WORDS / 2;
        }
        s = e;
    }
    if segments.len() <= 1 {
        segments.clear();
    }
    (whole, segments)
}

fn size_bucket(words: usize) -> &'static [u8] {
    // How long the reply is, coarsely: a one-word text reads differently from a letter.
    match words {
        0..=2 => b"len:tiny",
        3..=8 => b"len:short",
        9..=40 => b"len:medium",
        _ => b"len:long",
    }
}

/// Character n-grams over "<word>", on char boundaries.
fn char_grams(word: &[u8], padded: &mut Vec<u8>, out: &mut Vec<u32>) {
    padded.clear();
    padded.push(b'<');
    padded.extend_from_slice(word);
    padded.push(b'>');
    // Char starts of the padded word (its bytes for ASCII, the usual case).
    let mut starts = [0usize; 64];
    let mut count = 0;
    for (i, &b) in padded.iter().enumerate() {
        if is_char_start(b) && count < starts.len() {
            starts[count] = i;
            count += 1;
        }
    }
    let starts = &starts[..count];
    for (si, &s) in starts.iter().enumerate() {
        for n in CHAR_MIN..=CHAR_MAX {
            let end = match starts.get(si + n) {
                Some(&e) => e,
                None if si + n == starts.len() => padded.len(),
                None => break,
            };
            // A gram that is the whole padded word duplicates the word feature.
            if s == 0 && end == padded.len() {
                break;
            }
            out.push(hash(KIND_CHAR, &padded[s..end]));
        }
    }
}

/// What the opt-out rules found, as a feature: the model learns how far to trust them.
pub fn rule_feature(rules_opt_out: bool) -> u32 {
    hash(KIND_META, if rules_opt_out { b"rule:opt_out" } else { b"rule:none" })
}

fn is_char_start(b: u8) -> bool {
    (b & 0xC0) != 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_digits_are_shapes() {
        assert_eq!(words("Ça coûte 1.250,00 € ? L'équipe"), ["ca", "coute", "0", "000", "00", "l'equipe"]);
        assert_eq!(words("STOP!!!"), ["stop"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn features_are_deterministic_and_include_the_channel() {
        let a = extract(Source::Sms, "stop pls");
        assert_eq!(a, extract(Source::Sms, "STOP pls"));
        assert_ne!(a, extract(Source::Email, "stop pls"));
        // "<stop>" has 3..5-grams: <st sto top op> <sto stop top> <stop stop>
        assert!(a.len() > 10);
    }

    fn segment_texts(t: &str) -> Vec<&str> {
        extract_with_segments(Source::Email, t).1.iter().map(|s| &t[s.start..s.end]).collect()
    }

    #[test]
    fn segments_are_sentences_and_windows_of_long_transcripts() {
        assert_eq!(segment_texts("We paid last week. Stop emailing us!"), ["We paid last week", "Stop emailing us"]);
        let t =
            "yeah we paid it we paid it weeks ago and you keep phoning so i want this number taken off your list today";
        let s = segment_texts(t);
        assert!(s.len() >= 3, "{s:?}");
        assert!(s.iter().any(|x| x.contains("number taken off your list")), "{s:?}");
        assert!(segment_texts("ok").is_empty());
        assert!(segment_texts("").is_empty());
        assert_eq!(
            segment_texts("Send these to ap@x.example please. Thanks"),
            ["Send these to ap@x.example please", "Thanks"]
        );
        // A segment's features are those of the same words read alone.
        let (_, segs) = extract_with_segments(Source::Sms, "Paid yesterday. Stop texting me");
        assert_eq!(segs[1].features, extract(Source::Sms, "Stop texting me"));
    }

    #[test]
    fn multibyte_words_are_cut_on_char_boundaries() {
        for t in ["Счёт оплачен", "支払い済みです", "ok 👍", "zahlen wir übermorgen"] {
            let _ = extract(Source::Email, t);
        }
    }
}
