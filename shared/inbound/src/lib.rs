//! Inbound email: one raw RFC 5322 message, as a mail server delivers it, turned into what arflow needs:
//! what kind of message it is (a client's reply, a bounce, a spam complaint, an automatic reply), which
//! reminder it answers, the client's own new text and what the client means.
//!
//! MIME (multipart, quoted-printable, base64, charsets, encoded words) is decoded by `mail-parser`; this
//! crate adds delivery/abuse report reading, auto-reply detection, HTML to text and quote/signature removal.
//! Everything degrades gracefully: only input with no header at all is an error.

mod autoreply;
mod html;
mod report;
mod text;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};
use mail_parser::{HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

pub use arflow_replies::{Classification, Date, Intent, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Reply,
    Bounce,
    Complaint,
    AutoReply,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reply => "reply",
            Kind::Bounce => "bounce",
            Kind::Complaint => "complaint",
            Kind::AutoReply => "auto_reply",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    Hard,
    Soft,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bounce {
    pub recipient: String,
    #[serde(rename = "type")]
    pub kind: BounceType,
    pub status: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Inbound {
    pub kind: Kind,
    /// Message-ID of this message, with `<>`.
    pub message_id: Option<String>,
    /// The firm's reminder this message answers or reports on (with `<>`): In-Reply-To, else the last
    /// References entry; for bounces and complaints the Message-ID of the returned/reported message.
    pub in_reply_to: Option<String>,
    /// Every id this message may refer to, best first, without duplicates.
    pub references: Vec<String>,
    /// Token of a `reply+<token>@...` address the message was delivered to.
    pub reply_token: Option<String>,
    /// Sender address, lowercase.
    pub from: Option<String>,
    pub subject: Option<String>,
    /// The Date header.
    pub date: Option<DateTime<FixedOffset>>,
    /// The Date header's calendar day in the sender's own offset.
    pub reference_date: Option<Date>,
    /// The client's own new text: quotes, signatures and disclaimers removed (empty for bounces/complaints).
    pub client_text: String,
    /// ISO 639-1 code of the client's text, when it can be told.
    pub language: Option<String>,
    pub bounce: Option<Bounce>,
    /// File names of attachments.
    pub attachments: Vec<String>,
    /// For replies and automatic replies; `None` for bounces and complaints.
    pub classification: Option<Classification>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InboundError {
    #[error("empty input")]
    Empty,
    #[error("not an email message: no header fields")]
    NotAMessage,
}

fn re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// Parses one raw message. `fallback_reference` is the day used to resolve relative dates ("Friday") when
/// the Date header is missing or unreadable.
pub fn parse(raw: &[u8], fallback_reference: Date) -> Result<Inbound, InboundError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(InboundError::Empty);
    }
    let message = MessageParser::default().parse(raw).ok_or(InboundError::NotAMessage)?;
    if !has_real_headers(&message) {
        return Err(InboundError::NotAMessage);
    }
    let mail = Mail { message: &message };

    let from_addr = message.from().and_then(|a| a.first());
    let from = from_addr.and_then(|a| a.address.as_deref()).map(|a| a.trim().to_lowercase());
    let from_name = from_addr.and_then(|a| a.name.as_deref()).map(str::to_string);
    let subject = message.subject().map(|s| s.trim().to_string());
    let (date, reference_date) = mail.date();
    let reply_token = mail.reply_token();
    let header_ids = mail.thread_ids();
    let attachments = mail.attachment_names();

    let report = mail.report_type();
    let mut original_id = None;
    let mut bounce = None;
    let kind = match report {
        ReportType::Feedback => {
            original_id = mail.reported_message_id();
            Kind::Complaint
        }
        ReportType::Delivery(status) => {
            original_id = mail.reported_message_id();
            match status {
                Some(b) => {
                    bounce = Some(b);
                    Kind::Bounce
                }
                // A report of successful delivery or relay: nothing failed, nobody wrote.
                None => Kind::AutoReply,
            }
        }
        ReportType::None => {
            let notice = mail.all_text();
            if report::has_feedback_fields(&notice) {
                original_id = mail.reported_message_id();
                Kind::Complaint
            } else if report::looks_like_bounce(from.as_deref(), from_name.as_deref(), subject.as_deref()) {
                original_id = mail.reported_message_id();
                let candidates = mail.original_recipients();
                bounce = Some(report::scan_bounce(&notice, subject.as_deref(), &candidates));
                Kind::Bounce
            } else {
                Kind::Reply
            }
        }
    };

    // A reply that forwards the reminder as an attachment names it only there.
    let attached_id = if kind == Kind::Reply { mail.attached_message_id() } else { None };
    let mut references = Vec::new();
    for id in original_id.iter().chain(header_ids.iter()).chain(attached_id.iter()) {
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    // In a thread (a colleague's forward answered), In-Reply-To may name the client's own message: prefer an id
    // from the domain the reply address belongs to, i.e. the firm's reminder.
    let firm_domain = reply_token.as_ref().and(mail.reply_address_domain());
    let in_reply_to = firm_domain
        .and_then(|domain| references.iter().find(|id| same_organisation(id, &domain)))
        .or_else(|| references.first())
        .cloned();

    let (client_text, language, classification, kind) = match kind {
        Kind::Bounce | Kind::Complaint => {
            let language = detect_language(&mail.all_text()).or_else(|| mail.content_language());
            (String::new(), language, None, kind)
        }
        Kind::Reply | Kind::AutoReply => {
            let mine = mail.client_text(from_name.as_deref(), subject.as_deref());
            // The classifier's own stripping knows more signature shapes; keep ours when it leaves nothing.
            let theirs = arflow_replies::client_text(&mine);
            let own = if theirs.is_empty() || text::only_signoff_name_added(&theirs, &mine) { mine } else { theirs };
            // Too little own text to tell ("STOP"): the message as a whole, quote included, says it.
            let language =
                detect_language(&own).or_else(|| mail.content_language()).or_else(|| detect_language(&mail.all_text()));
            let header = |name: &str| mail.header(name);
            let auto_reason = if kind == Kind::AutoReply {
                Some("delivery report without a failure".to_string())
            } else {
                autoreply::reason(&header, subject.as_deref().unwrap_or_default(), &own)
            };
            let reference = reference_date.unwrap_or(fallback_reference);
            match auto_reason {
                Some(evidence) => {
                    let classification = Classification::certain(Intent::AutoReply, None, evidence);
                    (own, language, Some(classification), Kind::AutoReply)
                }
                None => {
                    let classification = arflow_replies::classify(Source::Email, &own, reference);
                    let kind = if classification.intent == Intent::AutoReply { Kind::AutoReply } else { Kind::Reply };
                    (own, language, Some(classification), kind)
                }
            }
        }
    };

    Ok(Inbound {
        kind,
        message_id: message.message_id().map(angle),
        in_reply_to,
        references,
        reply_token,
        from,
        subject,
        date,
        reference_date,
        client_text,
        language,
        bounce,
        attachments,
        classification,
    })
}

/// mail-parser accepts any bytes; a message needs at least one well-formed header field.
fn has_real_headers(message: &Message<'_>) -> bool {
    message.headers().iter().any(|h| {
        let name = h.name();
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
    })
}

fn angle(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

enum ReportType {
    None,
    Feedback,
    /// A delivery status report; `None` inside when no recipient failed or was delayed.
    Delivery(Option<Bounce>),
}

struct Mail<'m, 'x> {
    message: &'m Message<'x>,
}

impl<'m, 'x> Mail<'m, 'x> {
    /// Raw value of the first top-level header called `name` (case-insensitive), unfolded.
    fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    fn headers(&self, name: &str) -> Vec<String> {
        self.message
            .headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.replace("\r\n", "").replace('\n', "").trim().to_string())
            .collect()
    }

    fn date(&self) -> (Option<DateTime<FixedOffset>>, Option<Date>) {
        let Some(d) = self.message.date() else { return (None, None) };
        let offset_secs =
            (i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60) * if d.tz_before_gmt { -1 } else { 1 };
        let local = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            .and_then(|day| day.and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second)));
        let Some(local) = local else { return (None, None) };
        let date = FixedOffset::east_opt(offset_secs).and_then(|tz| tz.from_local_datetime(&local).single());
        let reference = i16::try_from(d.year)
            .ok()
            .and_then(|y| Date::new(y, i8::try_from(d.month).ok()?, i8::try_from(d.day).ok()?).ok());
        (date, reference)
    }

    /// Token of the first `reply+<token>@` address among the delivery and recipient headers.
    fn reply_token(&self) -> Option<String> {
        static TOKEN: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"(?i)\breply\+([a-z0-9][a-z0-9_.=-]{0,127})@"));
        let token = TOKEN.as_ref()?;
        ["Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc", "Received"]
            .iter()
            .flat_map(|name| self.headers(name))
            .find_map(|value| token.captures(&value).and_then(|c| c.get(1)).map(|m| m.as_str().to_string()))
    }

    /// Domain of the first `reply+<token>@` address (lower case).
    fn reply_address_domain(&self) -> Option<String> {
        static ADDRESS: LazyLock<Option<Regex>> =
            LazyLock::new(|| re(r"(?i)\breply\+[a-z0-9][a-z0-9_.=-]{0,127}@([a-z0-9.-]+)"));
        let address = ADDRESS.as_ref()?;
        ["Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc", "Received"]
            .iter()
            .flat_map(|name| self.headers(name))
            .find_map(|value| address.captures(&value).and_then(|c| c.get(1)).map(|m| m.as_str().to_lowercase()))
    }

    /// In-Reply-To ids, then References from the most recent back.
    fn thread_ids(&self) -> Vec<String> {
        let ids = |value: &HeaderValue<'_>| -> Vec<String> {
            match value {
                HeaderValue::Text(t) => vec![angle(t)],
                HeaderValue::TextList(list) => list.iter().map(|t| angle(t)).collect(),
                _ => Vec::new(),
            }
        };
        let mut out = ids(self.message.in_reply_to());
        out.extend(ids(self.message.references()).into_iter().rev());
        out.retain(|id| id.len() > 2);
        out
    }

    fn attachment_names(&self) -> Vec<String> {
        self.message.attachments().filter_map(|part| part.attachment_name().map(str::to_string)).collect()
    }

    fn content_language(&self) -> Option<String> {
        let value = self.header("Content-Language")?;
        let primary = value.split([',', '-', '_', ';']).next()?.trim().to_ascii_lowercase();
        (primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_lowercase())).then_some(primary)
    }

    fn content_type_of(part: &MessagePart<'_>) -> (String, String) {
        part.content_type().map_or((String::new(), String::new()), |ct| {
            (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or_default().to_ascii_lowercase())
        })
    }

    fn report_type(&self) -> ReportType {
        let root = Self::content_type_of(self.message.root_part());
        let report_attr = self
            .message
            .root_part()
            .content_type()
            .and_then(|ct| ct.attribute("report-type"))
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let mut status_part: Option<Option<Bounce>> = None;
        let mut feedback = root.1 == "report" && report_attr == "feedback-report";
        let mut delivery = root.1 == "report" && report_attr.ends_with("delivery-status");
        for part in &self.message.parts {
            let (ctype, subtype) = Self::content_type_of(part);
            if ctype != "message" {
                continue;
            }
            if subtype == "feedback-report" {
                feedback = true;
            } else if (subtype == "delivery-status" || subtype == "global-delivery-status") && status_part.is_none() {
                delivery = true;
                status_part = Some(report::parse_delivery_status(&String::from_utf8_lossy(part.contents())));
            }
        }
        if feedback {
            ReportType::Feedback
        } else if delivery {
            match status_part {
                // The status part lists no failed or delayed recipient: a delivery/relay notice.
                Some(None) => ReportType::Delivery(None),
                Some(Some(bounce)) => ReportType::Delivery(Some(bounce)),
                // No readable status part: read the notice text instead.
                None => ReportType::Delivery(Some(report::scan_bounce(
                    &self.all_text(),
                    self.message.subject(),
                    &self.original_recipients(),
                ))),
            }
        } else {
            ReportType::None
        }
    }

    /// Message-ID of the returned or reported message: an attached `message/rfc822`, a
    /// `text/rfc822-headers` part, or a `Message-ID:` line pasted into the notice.
    fn reported_message_id(&self) -> Option<String> {
        for part in &self.message.parts {
            if let PartType::Message(inner) = &part.body
                && let Some(id) = inner.message_id()
            {
                return Some(angle(id));
            }
            let (ctype, subtype) = Self::content_type_of(part);
            if subtype == "rfc822-headers"
                || (ctype == "message" && subtype == "rfc822")
                || subtype.ends_with("delivery-status")
            {
                let contents = part.contents();
                if let Some(id) =
                    MessageParser::default().parse_headers(contents).and_then(|m| m.message_id().map(angle))
                {
                    return Some(id);
                }
                if let Some(id) = report::scan_message_id(&String::from_utf8_lossy(contents)) {
                    return Some(id);
                }
            }
        }
        self.text_parts().iter().find_map(|t| report::scan_message_id(t))
    }

    /// Message-ID of an attached `message/rfc822` (a forward as attachment).
    fn attached_message_id(&self) -> Option<String> {
        self.message.parts.iter().find_map(|part| match &part.body {
            PartType::Message(inner) => inner.message_id().map(angle),
            _ => None,
        })
    }

    /// To addresses of the returned message (headers attached to a bounce), as a last resort for its recipient.
    fn original_recipients(&self) -> Vec<String> {
        let mut out = Vec::new();
        for value in self.headers("X-Failed-Recipients") {
            out.extend(value.split(',').map(|a| a.trim().to_string()).filter(|a| a.contains('@')));
        }
        for part in &self.message.parts {
            let parsed;
            let inner = match &part.body {
                PartType::Message(inner) => inner,
                _ if Self::content_type_of(part).1 == "rfc822-headers" => {
                    parsed = MessageParser::default().parse_headers(part.contents());
                    match &parsed {
                        Some(m) => m,
                        None => continue,
                    }
                }
                _ => continue,
            };
            if let Some(to) = inner.to() {
                out.extend(to.iter().filter_map(|a| a.address.as_deref().map(str::to_string)));
            }
        }
        out
    }

    /// Every text part of this message (not of attached messages), decoded; HTML converted to text.
    fn text_parts(&self) -> Vec<String> {
        self.message
            .parts
            .iter()
            .filter_map(|part| match &part.body {
                PartType::Text(t) => Some(t.to_string()),
                PartType::Html(h) => Some(html::to_text(h)),
                _ => None,
            })
            .collect()
    }

    fn all_text(&self) -> String {
        self.text_parts().join("\n\n")
    }

    /// The body the sender wrote: the first text/plain and text/html body parts (not attachments).
    fn bodies(&self) -> (Option<String>, Option<String>) {
        let mut plain = None;
        let mut html = None;
        let ids = self.message.text_body.iter().chain(self.message.html_body.iter());
        for &id in ids {
            let Some(part) = self.message.parts.get(id as usize) else { continue };
            if part.is_content_type("text", "rfc822-headers")
                || part.content_disposition().is_some_and(|d| d.is_attachment())
            {
                continue;
            }
            match &part.body {
                PartType::Text(t) if plain.is_none() => plain = Some(self.part_text(part, t)),
                PartType::Html(h) if html.is_none() => html = Some(self.part_text(part, h)),
                _ => {}
            }
        }
        (plain, html)
    }

    /// A body part's text. Bytes that are not what the label says (Windows-1252 labelled UTF-8, "unknown-8bit")
    /// decode with replacement characters: such a part is read again as Windows-1252, what it nearly always is.
    fn part_text(&self, part: &MessagePart<'_>, decoded: &str) -> String {
        use mail_parser::decoders::{
            base64::base64_decode, charsets::map::charset_decoder, quoted_printable::quoted_printable_decode,
        };
        if !decoded.contains('\u{FFFD}') {
            return decoded.to_string();
        }
        let range = part.raw_body_offset() as usize..part.raw_end_offset() as usize;
        let bytes = self.message.raw_message().get(range).and_then(|raw| match part.encoding {
            mail_parser::Encoding::QuotedPrintable => quoted_printable_decode(raw),
            mail_parser::Encoding::Base64 => base64_decode(raw),
            mail_parser::Encoding::None => Some(raw.to_vec()),
        });
        match (bytes, charset_decoder(b"windows-1252")) {
            (Some(bytes), Some(decode)) if std::str::from_utf8(&bytes).is_err() => decode(&bytes),
            _ => decoded.to_string(),
        }
    }

    /// The client's own new text: from the plain body, else (or when the plain body holds only the quote) the
    /// HTML body; a subject that is only an opt-out word counts as text.
    fn client_text(&self, from_name: Option<&str>, subject: Option<&str>) -> String {
        let (plain, html) = self.bodies();
        let mut own = plain.as_deref().map(|p| text::own_text(p, from_name)).unwrap_or_default();
        if own.is_empty()
            && let Some(h) = html
        {
            own = text::own_text(&html::to_text(&h), from_name);
        }
        match subject.and_then(opt_out_subject) {
            Some(word) if own.is_empty() => word,
            Some(word) if !own.to_lowercase().contains(&word.to_lowercase()) => format!("{word}\n\n{own}"),
            _ => own,
        }
    }
}

/// Whether message id `<local@host>` comes from the organisation of mail `domain` ("harborvale.example" and
/// "in.harborvale.example"): one ends with the other's last two labels.
fn same_organisation(id: &str, domain: &str) -> bool {
    let Some(host) = id.trim_matches(['<', '>']).rsplit_once('@').map(|(_, h)| h.to_lowercase()) else {
        return false;
    };
    // Two labels ("harborvale.example"), three under a country's second level ("harborvale.co.uk").
    let base = |d: &str| {
        let labels: Vec<&str> = d.rsplit('.').collect();
        let country_second_level = labels.len() > 2 && labels[0].len() == 2 && labels[1].len() <= 3;
        labels.into_iter().take(if country_second_level { 3 } else { 2 }).collect::<Vec<_>>().join(".")
    };
    !host.is_empty() && base(&host) == base(domain) && host.contains('.')
}

/// A subject that is only an opt-out word ("unsubscribe", "STOP"), after reply/forward prefixes.
fn opt_out_subject(subject: &str) -> Option<String> {
    static PREFIX: LazyLock<Option<Regex>> =
        LazyLock::new(|| re(r"(?i)^\s*(?:(?:re|aw|rv|tr|sv|vs|wg|fw|fwd|antw|réf|ref|r)\s*(?:\[\d+\])?\s*:\s*)+"));
    let rest = PREFIX.as_ref().map_or(subject, |p| p.find(subject).map_or(subject, |m| &subject[m.end()..]));
    let word = rest.trim().trim_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
    let lower = word.to_lowercase();
    const OPT_OUT: &[&str] = &[
        "unsubscribe",
        "unsubscribe me",
        "stop",
        "remove",
        "remove me",
        "opt out",
        "opt-out",
        "désabonner",
        "se désabonner",
        "désinscription",
        "abmelden",
        "abbestellen",
        "darse de baja",
        "baja",
        "cancelar suscripción",
    ];
    OPT_OUT.contains(&lower.as_str()).then(|| word.to_string())
}

/// ISO 639-1 code of `text`, among the languages clients write in, when the detector leans clearly enough
/// (very short texts are left to Content-Language).
fn detect_language(text: &str) -> Option<String> {
    use whatlang::Lang;
    const LANGS: &[(Lang, &str)] = &[
        (Lang::Eng, "en"),
        (Lang::Fra, "fr"),
        (Lang::Deu, "de"),
        (Lang::Spa, "es"),
        (Lang::Ita, "it"),
        (Lang::Por, "pt"),
        (Lang::Nld, "nl"),
    ];
    if text.chars().filter(|c| c.is_alphabetic()).count() < 12 {
        return None;
    }
    let detector = whatlang::Detector::with_allowlist(LANGS.iter().map(|(l, _)| *l).collect());
    let info = detector.detect(text)?;
    if info.confidence() < 0.1 {
        return None;
    }
    LANGS.iter().find(|(l, _)| *l == info.lang()).map(|(_, code)| (*code).to_string())
}

#[cfg(test)]
mod tests {
    use super::same_organisation;

    #[test]
    fn message_ids_of_the_reply_address_organisation() {
        assert!(same_organisation("<rem-INV-1@harborvale.example>", "in.harborvale.example"));
        assert!(same_organisation("<rem-1@mail.harborvale.co.uk>", "in.harborvale.co.uk"));
        assert!(!same_organisation("<x@other.co.uk>", "in.harborvale.co.uk"));
        assert!(!same_organisation("<CAF=x@mail.gmail.com>", "in.harborvale.example"));
        assert!(!same_organisation("<no-host>", "in.harborvale.example"));
    }
}
