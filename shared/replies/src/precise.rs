//! Rules precise enough to keep the last word over the model: a reply that is nothing but a
//! carrier-style opt-out keyword (the CTIA/TCPA keywords STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
//! QUIT, REVOKE, OPTOUT, and their usual equivalents in the seven languages), with at most a
//! courtesy word around it. DSN/ARF reports and auto-reply headers are recognised earlier, from
//! the message's structure (`arflow-inbound`).

use crate::features::words;
use crate::{Classification, Intent};

const KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "opt-out",
    "remove",
    // fr, de, es, pt, it, nl
    "arret",
    "arreter",
    "desabonner",
    "desinscrire",
    "stopp",
    "abmelden",
    "abbestellen",
    "baja",
    "parar",
    "pare",
    "alto",
    "sair",
    "cancelar",
    "descadastrar",
    "basta",
    "disiscrivi",
    "cancellami",
    "afmelden",
    "uitschrijven",
];

/// Words that may stand beside the keyword without changing what it means.
const COURTESY: &[&str] = &[
    "please",
    "pls",
    "plz",
    "now",
    "thanks",
    "thank",
    "you",
    "me",
    "it",
    "all",
    "svp",
    "merci",
    "bitte",
    "danke",
    "por",
    "favor",
    "gracias",
    "obrigado",
    "obrigada",
    "grazie",
    "per",
    "alstublieft",
    "aub",
    "dank",
    "je",
    "a",
    "de",
    "la",
    "opt",
    "out",
];

/// `Some(opt_out)` when the whole reply is an opt-out keyword.
pub fn opt_out_keyword(own: &str) -> Option<Classification> {
    // Four short words at most: a longer text is never a bare keyword (and skips the tokenising).
    if own.len() > 80 {
        return None;
    }
    let ws = words(own);
    if ws.is_empty() || ws.len() > 4 {
        return None;
    }
    let is_key = |w: &str| KEYWORDS.contains(&w);
    let keyed = ws.iter().any(|w| is_key(w)) || ws.windows(2).any(|p| p[0] == "opt" && p[1] == "out");
    let rest_ok = ws.iter().all(|w| is_key(w) || COURTESY.contains(&w.as_str()));
    (keyed && rest_ok).then(|| Classification::certain(Intent::OptOut, None, own.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_alone_are_opt_outs() {
        for t in [
            "STOP",
            "Stop please",
            "UNSUBSCRIBE",
            "stop all",
            "STOPALL",
            "Arrêt",
            "Opt out",
            "BAJA",
            "parar",
            "Stopp bitte",
        ] {
            assert_eq!(opt_out_keyword(t).map(|c| c.intent), Some(Intent::OptOut), "{t}");
        }
    }

    #[test]
    fn a_keyword_inside_a_sentence_is_for_the_model() {
        for t in
            ["we will stop by friday to pay", "don't stop", "end of month", "cancel the duplicate invoice", "ok", ""]
        {
            assert_eq!(opt_out_keyword(t), None, "{t}");
        }
    }
}
