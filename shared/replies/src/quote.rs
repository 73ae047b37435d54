//! The client's own new text in an email reply: quoted earlier messages, forwarded content,
//! device signatures, signature blocks and disclaimers removed.

use std::sync::LazyLock;

use regex::{Regex, RegexBuilder};

fn build(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 22).build().ok()
}

struct Patterns {
    /// "On ... wrote:", "Le ... a écrit :", "Am ... schrieb ...:", ... (one line, or two when wrapped).
    attribution: Option<Regex>,
    /// Lines that start an attribution that may wrap onto the next line.
    attribution_start: Option<Regex>,
    /// "-----Original Message-----", "---------- Forwarded message ---------", Outlook's rule.
    separator: Option<Regex>,
    /// First line of an Outlook-style header block ("From: ..." / "De : ..." / "Von: ...").
    header_from: Option<Regex>,
    /// A following header line ("Sent:", "Envoyé :", "Gesendet:", "To:", "Subject:", ...).
    header_next: Option<Regex>,
    /// "Sent from my iPhone" and friends.
    device: Option<Regex>,
    /// A closing formula on its own line ("Thanks,", "Kind regards", "Cordialement", ...).
    signoff: Option<Regex>,
    /// First line of a legal disclaimer or company footer.
    disclaimer: Option<Regex>,
    /// Lines typical of a signature block (phone numbers, "Title | Company").
    signature_line: Option<Regex>,
    /// Ticket-system chrome that is not the sender's words.
    chrome: Option<Regex>,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| Patterns {
    attribution: build(
        r"^\s*(?:(?:on|le|am|el|il|em|op|in\s+data|den|dnia)\b.{0,300}?\b(?:wrote|a\s+[ée]crit|schrieb|escribi[óo]|ha\s+scritto|escreveu|schreef|skrev|napisa[łl])\b.{0,200}:|.{0,300}\b(?:wrote|a\s+[ée]crit|escribi[óo]|ha\s+scritto|escreveu)\s*:|.{0,200}@.{0,100}\b(?:schrieb|schreef|skrev)\b.{0,120}:)\s*$",
    ),
    attribution_start: build(r"^\s*(?:on|le|am|el|il|em|op|in\s+data)\s+\S"),
    separator: build(
        r"^\s*(?:-{2,}\s*(?:original\s+message|message\s+d'origine|message\s+original|urspr[üu]ngliche\s+nachricht|originalnachricht|mensaje\s+original|messaggio\s+originale|mensagem\s+original|oorspronkelijk\s+bericht|forwarded\s+message|message\s+transf[ée]r[ée]|weitergeleitete\s+nachricht|mensaje\s+reenviado|messaggio\s+inoltrato|mensagem\s+encaminhada|doorgestuurd\s+bericht)\s*-{2,}|_{10,}|-{20,}|begin\s+forwarded\s+message\s*:|d[ée]but\s+du\s+message\s+r[ée]exp[ée]di[ée]\s*:|anfang\s+der\s+weitergeleiteten\s+nachricht\s*:|inicio\s+del\s+mensaje\s+reenviado\s*:)\s*$",
    ),
    header_from: build(r"^\s*\*?(?:from|de|von|da|van|od|fra|från)\s*\*?\s*:\s*\S"),
    header_next: build(
        r"^\s*\*?(?:sent|date|envoy[ée](?:\s+le)?|gesendet|datum|enviado(?:\s+el)?|enviada(?:\s+em)?|fecha|inviato|data|verzonden|to|[àa]|an|para|aan|subject|objet|betreff|asunto|oggetto|assunto|onderwerp|cc)\s*\*?\s*:",
    ),
    device: build(
        r"^\s*(?:sent\s+from\s+(?:my\s+)?\S.{0,40}|sent\s+via\s+\S.{0,40}|get\s+outlook\s+for\s+\S.{0,30}|envoy[ée]\s+(?:de|depuis)\s+(?:mon\s+)?\S.{0,40}|von\s+meinem\s+\S.{0,30}\s+gesendet|gesendet\s+von\s+(?:meinem\s+)?\S.{0,40}|enviado\s+(?:desde|do|de)\s+(?:mi|meu|o\s+meu)?\s*\S.{0,40}|inviato\s+da\s+\S.{0,40}|verzonden\s+(?:vanaf|met|van)\s+(?:mijn\s+)?\S.{0,40})\s*$",
    ),
    signoff: build(
        r"^\s*(?:thanks|thank\s+you|many\s+thanks|thanks\s+again|thanks\s+so\s+much|thx|ty|best|best\s+regards|best\s+wishes|kind\s+regards|warm\s+regards|warmest\s+regards|regards|cheers|sincerely|yours\s+sincerely|yours\s+truly|respectfully|all\s+the\s+best|br|rgds|cordialement|bien\s+cordialement|tr[èe]s\s+cordialement|bien\s+[àa]\s+vous|salutations|sinc[èe]res\s+salutations|bonne\s+journ[ée]e|bonne\s+soir[ée]e|merci|merci\s+d'avance|mit\s+freundlichen\s+gr[üu](?:ß|ss)en|freundliche\s+gr[üu](?:ß|ss)e|viele\s+gr[üu](?:ß|ss)e|beste\s+gr[üu](?:ß|ss)e|liebe\s+gr[üu](?:ß|ss)e|herzliche\s+gr[üu](?:ß|ss)e|sch[öo]ne\s+gr[üu](?:ß|ss)e|gru(?:ß|ss)|gr[üu](?:ß|ss)e|mfg|lg|vg|vielen\s+dank|danke|saludos|un\s+saludo|saludos\s+cordiales|un\s+cordial\s+saludo|atentamente|cordialmente|muchas\s+gracias|gracias|cordiali\s+saluti|distinti\s+saluti|saluti|grazie|grazie\s+mille|buona\s+giornata|att\.?|atenciosamente|abra[çc]os|abs|obrigad[oa]|met\s+vriendelijke\s+groet(?:en)?|vriendelijke\s+groet(?:en)?|groeten|mvg|hartelijke\s+groet(?:en)?|met\s+groet)\s*[,.!]?\s*$",
    ),
    disclaimer: build(
        r"^\s*(?:confidentiality\s+notice|confidential(?:ity)?\b|notice\s*:|disclaimer|important\s*:\s*this|this\s+(?:e-?mail|message|communication|transmission)\b.{0,80}\b(?:confidential|intended|privileged|may\s+contain|contains|is\s+a\s+service)|the\s+information\s+(?:contained|in\s+this|transmitted)|if\s+you\s+(?:are\s+not|have\s+received|received)\s+th|please\s+consider\s+the\s+environment|think\s+before\s+you\s+print|ce\s+(?:message|courriel|mail|e-mail)\b.{0,80}(?:confidentiel|destinataire)|avertissement|diese\s+(?:e-?mail|nachricht)\b.{0,80}(?:vertraulich|enth[äa]lt|informationen)|gesch[äa]ftsf[üu]hr(?:er|ung)\s*:|amtsgericht|registergericht|handelsregister|este\s+(?:mensaje|correo|e-?mail)\b.{0,80}(?:confidencial|destinatario|privilegiad)|aviso\s+legal|questo\s+(?:messaggio|e-?mail)\b.{0,80}(?:riservat|destinatari|confidenzial)|questa\s+e-?mail|esta\s+mensagem|dit\s+(?:bericht|e-?mailbericht)\b.{0,80}(?:vertrouwelijk|bestemd|uitsluitend)|registered\s+(?:office|in\s+england)|company\s+registration|vat\s+reg)",
    ),
    signature_line: build(
        r"(?:^\s*(?:tel|tél|phone|ph|mobile|mob|cell|office|direct|fax|t|m|p|f|d|o|e)\s*[.:]\s*\+?[\d(]|\+?\(?\d{2,4}\)?[\s.-]\d{2,4}[\s.-]\d{3,4}|\s\|\s|^\s*www\.\S+\s*$|^\s*https?://\S+\s*$)",
    ),
    chrome: build(r"^\s*#+-?\s*please\s+type\s+your\s+reply\s+above\s+this\s+line\s*-?#+\s*$"),
});

fn hit(re: &Option<Regex>, line: &str) -> bool {
    re.as_ref().is_some_and(|re| re.is_match(line))
}

/// How the rest of the text is treated after a given line.
enum Cut {
    /// Keep this line and go on.
    Keep,
    /// Drop this line, go on.
    Drop,
    /// Drop this line and the next one (a wrapped attribution), go on.
    DropTwo,
    /// Drop this line and everything after it.
    Stop,
    /// Keep this line and at most one short line after it (a sign-off and the sender's name), then stop.
    KeepSignoff,
}

/// The client's own new text: quotes (`>` lines, "On ... wrote:", "-----Original Message-----",
/// localised attributions, Outlook "From: ... Sent: ..." headers), device signatures ("Sent from
/// my iPhone"), signature blocks and disclaimers removed. A closing formula and the sender's name
/// right after it are kept. Idempotent: works on text that is already stripped.
pub fn client_text(text: &str) -> String {
    let p = &*PATTERNS;
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut kept: Vec<&str> = Vec::new();
    let has_content = |kept: &Vec<&str>| kept.iter().any(|l| !l.trim().is_empty());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        // Every separator, attribution and header pattern needs one of these bytes: lines
        // without them skip those patterns (most lines of a reply).
        let colon = trimmed.contains(':');
        let rule = colon || trimmed.contains('-') || trimmed.contains('_');
        let cut = if trimmed.starts_with('>') {
            Cut::Drop
        } else if trimmed.is_empty() {
            Cut::Keep
        } else if rule && hit(&p.separator, trimmed) {
            Cut::Stop
        } else if colon && hit(&p.attribution, trimmed) {
            attribution_cut(&lines, i + 1)
        } else if hit(&p.attribution_start, trimmed)
            && trimmed.len() < 300
            && lines.get(i + 1).is_some_and(|next| {
                next.trim().len() < 200
                    && next.contains(':')
                    && hit(&p.attribution, &format!("{trimmed} {}", next.trim()))
            })
        {
            match attribution_cut(&lines, i + 2) {
                Cut::Drop => Cut::DropTwo,
                other => other,
            }
        } else if colon
            && hit(&p.header_from, trimmed)
            && (1..=4).any(|k| lines.get(i + k).is_some_and(|l| hit(&p.header_next, l)))
        {
            Cut::Stop
        } else if (trimmed.len() < 90 && hit(&p.device, trimmed)) || hit(&p.chrome, trimmed) {
            Cut::Drop
        } else if (trimmed == "--" || trimmed == "—" || trimmed == "__") && has_content(&kept) {
            Cut::Stop
        } else if has_content(&kept) && trimmed.len() < 60 && hit(&p.signoff, trimmed) {
            Cut::KeepSignoff
        } else if has_content(&kept)
            && (hit(&p.disclaimer, trimmed) || (starts_paragraph(&lines, i) && is_signature_block(&lines, i)))
        {
            Cut::Stop
        } else {
            Cut::Keep
        };
        match cut {
            Cut::Keep => kept.push(line),
            Cut::Drop => {}
            Cut::DropTwo => i += 1,
            Cut::Stop => break,
            Cut::KeepSignoff => {
                kept.push(line);
                if let Some(next) = lines.get(i + 1) {
                    let name = next.trim();
                    let words = name.split_whitespace().count();
                    if !name.is_empty() && words <= 4 && name.len() <= 40 && !name.starts_with('>') {
                        kept.push(next);
                    }
                }
                break;
            }
        }
        i += 1;
    }
    let joined = kept.join("\n");
    joined.trim().to_string()
}

/// After an attribution line: a quoted (`>`) block follows, so drop the line and keep reading
/// (bottom-posted or inline replies); anything else is an unmarked quote, so stop.
fn attribution_cut(lines: &[&str], next: usize) -> Cut {
    let following = lines.iter().skip(next).map(|l| l.trim()).find(|l| !l.is_empty());
    match following {
        Some(l) if l.starts_with('>') => Cut::Drop,
        None => Cut::Drop,
        Some(_) => Cut::Stop,
    }
}

fn starts_paragraph(lines: &[&str], i: usize) -> bool {
    i == 0 || lines[i - 1].trim().is_empty()
}

/// A paragraph of short lines that carries phone numbers, "Title | Company" or a lone web
/// address: a signature block.
fn is_signature_block(lines: &[&str], start: usize) -> bool {
    let p = &*PATTERNS;
    let block: Vec<&str> =
        lines[start..].iter().map(|l| l.trim()).take_while(|l| !l.is_empty() && !l.starts_with('>')).collect();
    if block.is_empty() || block.len() > 12 {
        return false;
    }
    let short = block.iter().all(|l| l.chars().count() <= 80);
    let prose = block.iter().any(|l| l.ends_with(['.', '?', '!']) && l.split_whitespace().count() > 6);
    short && !prose && block.iter().any(|l| hit(&p.signature_line, l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_quote() {
        let t =
            "We'll pay Friday.\n\nOn Fri, Nov 20, 2026 at 8:35 AM Dana <ar@x.example> wrote:\n> Hello\n> unsubscribe";
        assert_eq!(client_text(t), "We'll pay Friday.");
    }

    #[test]
    fn wrapped_attribution_and_bottom_post() {
        let t = "On Fri, Jan 9, 2026 at 10:02 AM Harbor <ar@h.example>\nwrote:\n\n> Hi\n> STOP\n\nPaid on the 3rd.\n\n-- \nSam";
        assert_eq!(client_text(t), "Paid on the 3rd.");
    }

    #[test]
    fn outlook_headers() {
        let t = "Approved.\n\nFrom: AR <ar@x.example>\nSent: Friday, July 17, 2026 9:19 AM\nTo: me\n\nPlease pay. Unsubscribe.";
        assert_eq!(client_text(t), "Approved.");
        let t = "Noted.\n\nDe : AR <ar@x.example>\nEnvoyé : vendredi 17 juillet 2026 09:19\nÀ : moi\n\nPayez.";
        assert_eq!(client_text(t), "Noted.");
        let t = "Ok.\n-----Original Message-----\nFrom: AR\nunsubscribe";
        assert_eq!(client_text(t), "Ok.");
    }

    #[test]
    fn localised_attributions() {
        for header in [
            "Le jeu. 20 août 2026 à 14:53, Claire <c@x.example> a écrit :",
            "Am Fr., 18. September 2026 um 10:37 schrieb Buchhaltung <b@x.example>:",
            "El lun, 8 feb 2027 a las 13:54, Cobros (<c@x.example>) escribió:",
            "Il giorno lun 8 feb 2027 alle ore 13:54 Studio <s@x.example> ha scritto:",
            "Em sex., 14 de ago. de 2026 às 09:30, Financeiro <f@x.example> escreveu:",
            "Op ma 8 feb. 2027 om 13:54 schreef Debiteuren <d@x.example>:",
        ] {
            let t = format!("Merci.\n\n{header}\n> relance\n> désabonner");
            assert_eq!(client_text(&t), "Merci.", "{header}");
        }
    }

    #[test]
    fn more_header_shapes() {
        let t = "Pagaremos el viernes.\n\nDe: Cobros <c@x.example>\nEnviado el: lunes, 2 de marzo de 2026 9:00\nPara: yo\n\nBAJA";
        assert_eq!(client_text(t), "Pagaremos el viernes.");
        let t = "Bezahlt.\n\nBuchhaltung <b@x.example> schrieb am Mo., 2. März 2026, 09:00:\n\nAbmelden";
        assert_eq!(client_text(t), "Bezahlt.");
    }

    #[test]
    fn signature_and_disclaimer() {
        let t = "Wrong person.\n\nMike Johnson | Broker\nJohnson Realty Group\n\nNOTICE: If you received this in error, unsubscribe.";
        assert_eq!(client_text(t), "Wrong person.");
        let t = "Paid.\n\nThanks,\nKaren\nAccounts Payable\n(555) 201-3384";
        assert_eq!(client_text(t), "Paid.\n\nThanks,\nKaren");
        let t = "Will pay.\n\nSent from my iPhone";
        assert_eq!(client_text(t), "Will pay.");
    }

    #[test]
    fn lone_words_survive() {
        assert_eq!(client_text("Thanks"), "Thanks");
        assert_eq!(client_text("  STOP \n"), "STOP");
        assert_eq!(client_text(""), "");
        let once = client_text("Ok.\n\nOn Mon, Jan 5 X wrote:\n> a");
        assert_eq!(client_text(&once), once);
    }
}
