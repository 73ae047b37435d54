//! A rough guess of the reply's language from common words; used where the language changes the
//! meaning (day/month order of "10/04"), and to skip other languages' rules on English text.

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
    De,
    Es,
    It,
    Pt,
    Nl,
}

const WORDS: &[(Lang, &[&str])] = &[
    (
        Lang::En,
        &[
            "the", "and", "is", "we", "you", "it", "will", "this", "to", "for", "of", "pay", "i", "paid", "our", "be",
            "please", "thanks", "on", "by", "with", "that", "have",
        ],
    ),
    (
        Lang::Fr,
        &[
            "le",
            "la",
            "les",
            "de",
            "des",
            "et",
            "est",
            "nous",
            "vous",
            "pour",
            "une",
            "sera",
            "merci",
            "bonjour",
            "facture",
            "je",
            "pas",
            "ne",
            "du",
            "au",
            "virement",
            "cordialement",
            "avec",
        ],
    ),
    (
        Lang::De,
        &[
            "der",
            "die",
            "das",
            "und",
            "ist",
            "wir",
            "sie",
            "nicht",
            "ich",
            "mit",
            "fur",
            "rechnung",
            "bitte",
            "wird",
            "den",
            "dem",
            "ein",
            "eine",
            "zahlung",
            "uberweisung",
            "grussen",
            "danke",
            "auf",
        ],
    ),
    (
        Lang::Es,
        &[
            "el",
            "la",
            "los",
            "las",
            "de",
            "y",
            "es",
            "que",
            "por",
            "para",
            "una",
            "factura",
            "gracias",
            "pago",
            "transferencia",
            "hola",
            "saludos",
            "nos",
            "con",
            "del",
            "ya",
            "muy",
        ],
    ),
    (
        Lang::It,
        &[
            "il",
            "la",
            "di",
            "che",
            "e",
            "per",
            "non",
            "una",
            "fattura",
            "grazie",
            "bonifico",
            "buongiorno",
            "saluti",
            "sono",
            "della",
            "del",
            "pagamento",
            "vi",
            "ci",
            "con",
        ],
    ),
    (
        Lang::Pt,
        &[
            "o",
            "a",
            "os",
            "as",
            "de",
            "e",
            "que",
            "para",
            "uma",
            "fatura",
            "obrigado",
            "obrigada",
            "pagamento",
            "nao",
            "com",
            "do",
            "da",
            "bom",
            "dia",
            "em",
            "sera",
            "foi",
        ],
    ),
    (
        Lang::Nl,
        &[
            "de", "het", "een", "en", "is", "wij", "we", "niet", "ik", "van", "voor", "factuur", "betaling", "graag",
            "met", "op", "dank", "wordt", "groet", "u", "bedankt",
        ],
    ),
];

/// Per common word, the languages it belongs to (bit i = `WORDS[i]`).
static INDEX: LazyLock<HashMap<&'static [u8], u8>> = LazyLock::new(|| {
    let mut index: HashMap<&'static [u8], u8> = HashMap::new();
    for (i, (_, words)) in WORDS.iter().enumerate() {
        for w in *words {
            *index.entry(w.as_bytes()).or_default() |= 1 << i;
        }
    }
    index
});

fn scores(text: &[u8]) -> [usize; 7] {
    let mut scores = [0usize; 7];
    for word in text.split(|b| !b.is_ascii_alphabetic()).filter(|w| !w.is_empty()).take(400) {
        if let Some(&langs) = INDEX.get(word) {
            for (i, score) in scores.iter_mut().enumerate() {
                if langs & (1 << i) != 0 {
                    *score += 1;
                }
            }
        }
    }
    scores
}

/// English beyond doubt: enough English words and few of any other language's.
pub fn clearly_english(text: &[u8]) -> bool {
    let s = scores(text);
    let other = s[1..].iter().copied().max().unwrap_or(0);
    s[0] >= 3 && s[0] > 2 * other
}

/// The most likely language of a normalised (lower-case, accent-folded) text; English on a tie.
pub fn detect(text: &[u8]) -> Lang {
    let scores = scores(text);
    let mut best = 0;
    for i in 1..scores.len() {
        if scores[i] > scores[best] {
            best = i;
        }
    }
    WORDS[best].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses() {
        assert_eq!(detect(b"we will pay it on friday"), Lang::En);
        assert_eq!(detect(b"la transferencia se realizara el 10/04. un saludo."), Lang::Es);
        assert_eq!(detect(b"le virement partira le 10/04, merci"), Lang::Fr);
        assert_eq!(detect(b"die uberweisung erfolgt am 10.04."), Lang::De);
        assert_eq!(detect(b"il bonifico partira entro fine mese"), Lang::It);
        assert_eq!(detect(b"o pagamento sera feito no dia 15"), Lang::Pt);
        assert_eq!(detect(b"de betaling wordt volgende week gedaan"), Lang::Nl);
        assert_eq!(detect(b""), Lang::En);
    }
}
