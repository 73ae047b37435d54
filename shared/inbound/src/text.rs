//! The sender's own new text out of a reply body: quoted earlier messages (top- and bottom-posted, inline
//! `>` quotes, Outlook header blocks, forwards), signatures, mobile footers and disclaimers removed.

use regex::Regex;
use std::sync::LazyLock;

/// Builds a regex from a literal pattern; a pattern that does not compile disables its rule instead of panicking.
fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

fn matches(rule: &LazyLock<Option<Regex>>, text: &str) -> bool {
    rule.as_ref().is_some_and(|r| r.is_match(text))
}

/// "On <date>, <name> wrote:" and its translations; Zoho wraps it in dashes.
static ATTRIBUTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?ix)^[-\s]*(?:
        (?:on|le|el|il|op|em|den|dne|w\s+dniu)\b.{4,260}?\b(?:wrote|a\s+écrit|escribió|escribio|ha\s+scritto|schreef|escreveu|skrev|napisał|napsal)\s*(?::|-{2,})
      | am\b.{4,260}?\bschrieb\b.{0,200}:
      | am\b.{4,260}?\bhat\b.{1,200}?\bgeschrieben\s*:
      | .{1,200}?<\s?[^<>\s]+@[^<>\s]+>\s*schrieb\s+am\b.{4,120}:
      | .{0,200}<[^>@\s]+@[^>\s]+>\)?\s*(?:wrote|schrieb|a\s+écrit|escribió|ha\s+scritto|schreef|escreveu)\s*:
    )[-\s]*$")
});

/// Separators after which everything is the earlier message (quoted or forwarded).
static SEPARATOR: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?ix)^\s*(?:
        -{2,}\s*(?:original\s+message|message\s+d'origine|ursprüngliche\s+nachricht|mensaje\s+original|messaggio\s+originale|oorspronkelijk\s+bericht|mensagem\s+original)\s*-{2,}
      | -{2,}\s*(?:forwarded\s+message|message\s+transféré|weitergeleitete\s+nachricht|mensaje\s+reenviado|messaggio\s+inoltrato|doorgestuurd\s+bericht|mensagem\s+encaminhada)\s*-{2,}
      | begin\s+forwarded\s+message\s*:
      | début\s+du\s+message\s+réexpédié\s*:
      | anfang\s+der\s+weitergeleiteten\s+nachricht\s*:
      | inicio\s+del\s+mensaje\s+reenviado\s*:
    )\s*$")
});

/// First line of an Outlook-style header block ("From: ..." followed by "Sent: ...").
static HEADER_FROM: LazyLock<Option<Regex>> =
    LazyLock::new(|| re(r"(?i)^\s*\*?(?:from|de|von|van|da|från|od)\s*\*?\s*:\s*\S"));
static HEADER_NEXT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"(?i)^\s*\*?(?:sent|date|envoyé|gesendet|datum|enviado(?:\s+el)?|fecha|inviato|data|verzonden|skickat|to|à|an|para|a|aan|cc|subject|objet|betreff|asunto|oggetto|onderwerp)\s*\*?\s*:",
    )
});

/// Lines a help desk puts around the text ("##- Please type your reply above this line -##").
static HELPDESK_MARKER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?i)^\s*#*-?\s*(?:please\s+)?(?:type|write)\s+your\s+reply\s+above\s+this\s+line\s*-?#*\s*$")
});

static MOBILE_FOOTER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?ix)^\s*(?:
        sent\s+(?:from|via|with)\s+(?:my|the|mail|yahoo|outlook|aol|proton|samsung|blackberry)\b.{0,60}
      | get\s+outlook\s+for\s+\w+.{0,20}
      | envoyé\s+(?:de|depuis)\s+(?:mon|l'application)\b.{0,60}
      | von\s+meinem\s+.{1,40}\s+gesendet
      | gesendet\s+von\s+.{1,40}
      | enviado\s+desde\s+(?:mi|el|outlook|yahoo)\b.{0,60}
      | inviato\s+da(?:l)?\s+.{1,40}
      | this\s+email\s+is\s+a\s+service\s+from\s+.{1,80}
    )\s*$")
});

static DISCLAIMER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?ix)^\s*(?:
        (?:confidentiality\s+notice|confidential|disclaimer|notice|important\s+notice|privileged)\b\s*[:.\-]
      | (?:this|the\s+information\s+contained\s+in\s+this)\s+(?:e-?mail|message|communication|transmission)\b.{0,160}\b(?:confidential|privileged|intended\s+(?:only|solely))
      | please\s+consider\s+the\s+environment
      | ce\s+(?:message|courriel|e-?mail)\b.{0,120}\bconfidenti
      | diese\s+(?:e-?mail|nachricht)\b.{0,120}\bvertraulich
      | este\s+(?:mensaje|correo)\b.{0,120}\bconfidencial
    )")
});

/// A line naming a team rather than a person: its last word is a team word ("Billing Support", "Équipe ...").
static TEAM_SIGNOFF: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(r"(?ix)(?:
        \b(?:team|support|help\s?desk|service\s?desk|department|services|staff)\s*$
      | ^\s*(?:l'|l’)?équipe\b
      | ^\s*(?:das\s+)?\S*(?:team|kundenservice|buchhaltung)\s*$
      | ^\s*(?:el\s+)?equipo\b
    )")
});

/// Closing phrases that end a message ("Regards," "Mit freundlichen Grüßen").
const CLOSINGS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks again",
    "thanks so much",
    "many thanks",
    "thank you very much",
    "thx",
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "with regards",
    "best wishes",
    "best",
    "all the best",
    "cheers",
    "sincerely",
    "yours sincerely",
    "sincerely yours",
    "yours truly",
    "respectfully",
    "take care",
    "cordialement",
    "bien cordialement",
    "bien à vous",
    "merci",
    "merci beaucoup",
    "salutations",
    "meilleures salutations",
    "mit freundlichen grüßen",
    "mit freundlichen grüssen",
    "freundliche grüße",
    "freundliche grüsse",
    "viele grüße",
    "beste grüße",
    "liebe grüße",
    "grüße",
    "gruß",
    "danke",
    "vielen dank",
    "un saludo",
    "saludos",
    "saludos cordiales",
    "un cordial saludo",
    "atentamente",
    "gracias",
    "muchas gracias",
    "cordiali saluti",
    "distinti saluti",
    "saluti",
    "grazie",
    "met vriendelijke groet",
    "groeten",
    "atenciosamente",
    "obrigado",
    "obrigada",
];

/// Extracts the sender's own text from a reply body. `sender_name` is the From display name, used to find a
/// signature block that starts with the sender's full name.
pub fn own_text(body: &str, sender_name: Option<&str>) -> String {
    let normalised = body.replace("\r\n", "\n").replace(['\r'], "\n").replace(['\u{feff}', '\u{200b}'], "");
    let lines: Vec<&str> = normalised.lines().map(|l| l.trim_end()).collect();
    let kept = drop_quotes(&lines);
    let kept = drop_signature(&kept, sender_name);
    join(&kept)
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Length (in lines) of an attribution line starting at `i` ("On .. wrote:" wrapped over up to 3 lines).
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let first = lines.get(i)?.trim();
    if first.is_empty() || is_quoted(first) || first.len() > 300 {
        return None;
    }
    let mut joined = String::new();
    for (n, line) in lines.iter().skip(i).take(3).enumerate() {
        let line = line.trim();
        if line.is_empty() || is_quoted(line) {
            break;
        }
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line);
        if joined.len() > 400 {
            break;
        }
        if matches(&ATTRIBUTION, &joined) {
            return Some(n + 1);
        }
    }
    None
}

/// Outlook header block at `i`: "From:" then, within three lines, "Sent:"/"Date:"/"To:"/"Subject:".
fn header_block_at(lines: &[&str], i: usize) -> bool {
    let Some(line) = lines.get(i) else { return false };
    matches(&HEADER_FROM, line) && lines.iter().skip(i + 1).take(3).any(|next| matches(&HEADER_NEXT, next))
}

/// Drops `>`-quoted lines and attribution lines; stops at the first unquoted earlier message.
fn drop_quotes<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut kept = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_quoted(line) || matches(&HELPDESK_MARKER, line) {
            i += 1;
            continue;
        }
        if matches(&SEPARATOR, line) || header_block_at(lines, i) {
            break;
        }
        // A rule of underscores (Outlook) right before a header block.
        if line.trim().len() >= 8 && line.trim().chars().all(|c| c == '_' || c == '-') {
            let next = (i + 1..lines.len()).find(|&j| !lines[j].trim().is_empty());
            if next.is_some_and(|j| header_block_at(lines, j) || matches(&HEADER_FROM, lines[j])) {
                break;
            }
        }
        if let Some(len) = attribution_at(lines, i) {
            let next = (i + len..lines.len()).find(|&j| !lines[j].trim().is_empty());
            match next {
                // Bottom-posted or inline reply: the quote is `>`-prefixed, text may follow it.
                Some(j) if is_quoted(lines[j]) => {
                    i += len;
                    continue;
                }
                // Nothing quoted follows: the attribution heads an unprefixed copy of the earlier message.
                _ => break,
            }
        }
        kept.push(line);
        i += 1;
    }
    kept
}

fn normalise_phrase(line: &str) -> String {
    line.trim().trim_end_matches([',', '.', '!', ';', '-']).trim().to_lowercase()
}

fn is_closing(line: &str) -> bool {
    let phrase = normalise_phrase(line);
    !phrase.is_empty() && CLOSINGS.contains(&phrase.as_str())
}

/// A line that looks like a person's name: a few capitalised words, no digits or sentence punctuation.
fn is_name_like(line: &str) -> bool {
    let line = line.trim();
    let words: Vec<&str> = line.split_whitespace().collect();
    !words.is_empty()
        && words.len() <= 4
        && line.chars().count() <= 40
        && line.chars().next().is_some_and(char::is_uppercase)
        && !line.chars().any(|c| c.is_ascii_digit() || matches!(c, '@' | '?' | '!' | ':' | ';' | '(' | '|'))
        && !line.ends_with('.')
        && !line.ends_with(',')
}

fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The display name as a person writes it: "Bell, Marcus" -> "Marcus Bell"; quotes and bracketed notes removed.
fn full_name(display: &str) -> Option<String> {
    let mut name = display.trim().trim_matches(['"', '\'']).to_string();
    if let Some(open) = name.find(['(', '[']) {
        name.truncate(open);
    }
    if let Some((last, first)) = name.split_once(',') {
        name = format!("{} {}", first.trim(), last.trim());
    }
    let name = fold(&name);
    (name.split_whitespace().count() >= 2).then_some(name)
}

fn drop_signature<'a>(lines: &[&'a str], sender_name: Option<&str>) -> Vec<&'a str> {
    let mut end = lines.len();
    // RFC 3676 signature delimiter.
    if let Some(pos) = lines.iter().position(|l| l.trim() == "--" || l.trim() == "—") {
        end = pos;
    }
    let content_before = |i: usize| lines[..i].iter().any(|l| !l.trim().is_empty());
    let continues_after =
        |i: usize, end: usize| lines.get(i + 1..end).is_some_and(|r| r.iter().any(|l| !l.trim().is_empty()));

    // A paragraph of legal boilerplate ends the message.
    for i in 0..end {
        let starts_paragraph = i == 0 || lines[i - 1].trim().is_empty();
        if starts_paragraph && content_before(i) && matches(&DISCLAIMER, lines[i]) {
            end = i;
            break;
        }
    }
    // "Regards," + name, then more lines (title, company, phone...): the rest is the signature block.
    // Outlook often leaves an empty paragraph between the closing and the name.
    for i in 0..end {
        if !content_before(i) || !is_closing(lines[i]) {
            continue;
        }
        let Some(name_at) = (i + 1..end.min(i + 3)).find(|&j| !lines[j].trim().is_empty()) else {
            continue;
        };
        if is_name_like(lines[name_at]) && continues_after(name_at, end) {
            end = name_at + 1;
            break;
        }
    }
    // A block that opens with the sender's full name ("Marcus Bell", "Bradley Kowalski, CPA") after the text.
    if let Some(name) = sender_name.and_then(full_name) {
        for i in 1..end {
            let line = fold(lines[i]);
            let opens_block = lines[i - 1].trim().is_empty();
            if opens_block && content_before(i) && line.starts_with(&name) && continues_after(i, end) {
                end = i;
                break;
            }
        }
    }
    // A team's sign-off as the last paragraph ("Acme Billing Support", "The Accounts Team").
    if let Some(last) = (0..end).rev().find(|&i| !lines[i].trim().is_empty())
        && last > 0
        && lines[last - 1].trim().is_empty()
        && content_before(last)
        && is_name_like(lines[last])
        && matches(&TEAM_SIGNOFF, lines[last])
    {
        end = last;
    }
    // A rule left at the end (the <hr> before a quote the HTML conversion already removed) is not text.
    while let Some(last) = (0..end).rev().find(|&i| !lines[i].trim().is_empty())
        && is_rule(lines[last])
    {
        end = last;
    }
    lines[..end].iter().copied().filter(|l| !matches(&MOBILE_FOOTER, l)).collect()
}

fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.chars().count() >= 5 && line.chars().all(|c| matches!(c, '_' | '-' | '=' | '*' | '—' | '─'))
}

/// True when `longer` is `shorter` plus only a sign-off name line ("Bien cordialement,\n\nSophie Lefèvre"): the
/// name after a closing is part of the sender's text, not of the signature block.
pub(crate) fn only_signoff_name_added(shorter: &str, longer: &str) -> bool {
    let Some(rest) = longer.trim_end().strip_prefix(shorter.trim_end()) else {
        return false;
    };
    let closing = shorter.trim_end().lines().next_back().is_some_and(is_closing);
    let rest = rest.trim();
    closing && !rest.is_empty() && !rest.contains('\n') && is_name_like(rest)
}

/// Joins lines, with at most one empty line between paragraphs and none at the ends.
fn join(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in lines {
        if line.trim().is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        out.push_str(line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_posted_gmail_reply() {
        let body = "Hi,\n\nWe'll pay Friday.\n\nThanks,\nLena\n\n-- \nLena Marsh\nOwner\n\nOn Tue, Mar 24, 2026 at 9:14 AM Harbor & Vale AR <ar@harborvale.example>\nwrote:\n\n> Hi Lena,\n> unsubscribe here\n";
        assert_eq!(own_text(body, Some("Lena Marsh")), "Hi,\n\nWe'll pay Friday.\n\nThanks,\nLena");
    }

    #[test]
    fn bottom_posted_and_inline_replies() {
        let body =
            "On 5/5/26 9:14 AM, Harbor & Vale AR wrote:\n> Hi Alan,\n> old\n\nGot it, paying on the 15th.\n\n-- \nAlan";
        assert_eq!(own_text(body, None), "Got it, paying on the 15th.");
        let inline =
            "On Wed, Feb 18, 2026 at 09:14:00AM -0500, Harbor & Vale AR wrote:\n> a\n\nFirst?\n\n> b\n\nSecond?\n";
        assert_eq!(own_text(inline, None), "First?\n\nSecond?");
    }

    #[test]
    fn outlook_blocks_and_signature_by_name() {
        let body = "Paid.\n\nMarcus\n\nMarcus Bell\nDirector\n\nNOTICE: confidential\n\nFrom: AR <ar@x.example>\nSent: Monday\nTo: me\nSubject: Invoice\n\nHi Marcus";
        assert_eq!(own_text(body, Some("Marcus Bell")), "Paid.\n\nMarcus");
        let body = "Stop.\n\nRegards,\nDana\n\nDana Whitfield\nManager\n\n-----Original Message-----\nFrom: AR\n";
        assert_eq!(own_text(body, Some("Whitfield, Dana")), "Stop.\n\nRegards,\nDana");
        let body = "Ok.\n\n________________________________\nFrom: AR\nSent: x\n\nold";
        assert_eq!(own_text(body, None), "Ok.");
    }

    #[test]
    fn name_only_signoff_is_kept() {
        let body = "Please do not email me again.\n\nRuth Abernathy\n\n> On Apr 20, 2026, at 9:14 AM, AR <ar@x.example> wrote:\n> Hi";
        assert_eq!(own_text(body, Some("Ruth Abernathy")), "Please do not email me again.\n\nRuth Abernathy");
    }

    #[test]
    fn translated_attributions() {
        for attribution in [
            "Le mar. 3 mars 2026 à 09:14, Harbor & Vale AR <ar@harborvale.example> a écrit :",
            "Am Di., 10. März 2026 um 09:14 Uhr schrieb Harbor & Vale AR <ar@harborvale.example>:",
            "El lun, 23 feb 2026 a las 9:02, Harbor & Vale AR (<ar@harborvale.example>) escribió:",
            "---- On Tue, 14 Apr 2026 09:14:02 -0500 Harbor & Vale AR <ar@harborvale.example> wrote ---",
            "Am Do., 5. März 2026, 09:00 hat Harbor & Vale AR <ar@harborvale.example> geschrieben:",
            "Harbor & Vale AR <ar@harborvale.example> schrieb am Do., 5. März 2026, 09:00:",
        ] {
            let body = format!("Texte.\n\n{attribution}\n\nold text\n");
            assert_eq!(own_text(&body, None), "Texte.", "{attribution}");
        }
    }

    #[test]
    fn footers_and_helpdesk_marker() {
        let body =
            "##- Please type your reply above this line -##\n\nLogged.\n\nThis email is a service from Acme Support.\n";
        assert_eq!(own_text(body, None), "Logged.");
        assert_eq!(own_text("Looking now.\n\nSent from my iPhone\n", None), "Looking now.");
        assert_eq!(own_text("Looking now.\n________________________________\n", None), "Looking now.");
        let own = "Herr Weber schrieb am Montag folgendes:\nBitte Rechnung korrigieren.";
        assert_eq!(own_text(own, None), own);
        assert_eq!(
            own_text("Received, we will reply.\n\nAcme Hotels Finance Support\n", None),
            "Received, we will reply."
        );
        assert_eq!(own_text("Paid today.\n\nOwen Fitch\n", Some("Owen Fitch")), "Paid today.\n\nOwen Fitch");
    }

    #[test]
    fn signoff_name_after_closing() {
        assert!(only_signoff_name_added("Ok.\n\nBien cordialement,", "Ok.\n\nBien cordialement,\n\nSophie Lefèvre"));
        assert!(!only_signoff_name_added("Ok.", "Ok.\n\nSophie Lefèvre"));
        assert!(!only_signoff_name_added("Ok.\n\nThanks,", "Ok.\n\nThanks,\n\nSee the attached file."));
    }

    #[test]
    fn closing_then_empty_paragraph_then_signature_block() {
        let body = "Le virement part demain.\n\nBien cordialement,\n\nSophie Lefèvre\nComptabilité\nAtelier SARL\n";
        assert_eq!(
            own_text(body, Some("Sophie Lefèvre")),
            "Le virement part demain.\n\nBien cordialement,\n\nSophie Lefèvre"
        );
    }
}
