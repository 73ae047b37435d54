//! HTML body to plain text, keeping line structure and dropping what is not the sender's new text:
//! quoted earlier messages (`<blockquote>`, Gmail/Outlook/Thunderbird/Zoho quote containers),
//! signature blocks that mail clients mark up, `<style>`, `<script>` and `<head>`.

/// Elements whose content is never text.
const RAW_TEXT: &[&str] = &["style", "script", "head", "title", "xml", "template", "noscript"];

/// Elements with no end tag.
const VOID: &[&str] =
    &["br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source", "embed", "param", "track"];

/// Elements that start a new line (before and after).
const BLOCK: &[&str] = &[
    "div",
    "p",
    "tr",
    "li",
    "ul",
    "ol",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "center",
    "address",
    "dl",
    "dt",
    "dd",
    "form",
    "body",
    "html",
    "hr",
];

/// `id`/`class` values (case-insensitive, prefix match on id) marking the start of the quoted thread: everything
/// from there to the end of the document is someone else's text.
const QUOTE_CONTAINER_IDS: &[&str] = &[
    "divrplyfwdmsg",
    "appendonsend",
    "mail-editor-reference-message-container",
    "olk_src_body_section",
    "zm-_id_-sgn1",
];
const QUOTE_CONTAINER_CLASSES: &[&str] = &[
    "gmail_quote",
    "gmail_quote_container",
    "gmail_attr",
    "zmail_extra",
    "zmail_extra_hr",
    "yahoo_quoted",
    "protonmail_quote",
    "outlookmessageheader",
];

/// Markers of an element to drop with its content (but not what follows it).
const SKIP_IDS: &[&str] = &["signature", "zm-_id_-sgn", "composer_signature", "ms-outlook-mobile-signature"];
/// Thunderbird's attribution is skipped but not cut at: bottom-posted text follows its blockquote.
const SKIP_CLASSES: &[&str] =
    &["gmail_signature", "gmail_signature_prefix", "moz-signature", "moz-cite-prefix", "signature"];

struct Tag<'a> {
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: &'a str,
}

/// Converts an HTML body to text. Never fails: malformed markup degrades to its text.
pub fn to_text(html: &str) -> String {
    let mut out = Out::default();
    let mut rest = html;
    // Depth of the element being skipped (its tag name and nesting level), if any.
    let mut skipping: Option<(String, usize)> = None;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skipping.is_none() {
                out.text(rest);
            }
            break;
        };
        if skipping.is_none() {
            out.text(&rest[..lt]);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        let Some((tag, after)) = parse_tag(rest) else {
            // A lone '<' that opens no tag is text.
            if skipping.is_none() {
                out.text("<");
            }
            rest = &rest[1..];
            continue;
        };
        rest = after;
        let name = tag.name.as_str();
        if !tag.closing && RAW_TEXT.contains(&name) {
            rest = skip_raw_text(rest, name);
            continue;
        }
        let void = VOID.contains(&name) || tag.self_closing;
        if let Some((skip_name, depth)) = skipping.as_mut() {
            if name == skip_name.as_str() && !void {
                if tag.closing {
                    *depth -= 1;
                    if *depth == 0 {
                        skipping = None;
                        out.newline();
                    }
                } else {
                    *depth += 1;
                }
            }
            continue;
        }
        if !tag.closing {
            let id = attr(tag.attrs, "id").unwrap_or_default().to_ascii_lowercase();
            let classes = attr(tag.attrs, "class").unwrap_or_default().to_ascii_lowercase();
            let has_class = |list: &[&str]| classes.split_whitespace().any(|c| list.contains(&c));
            if QUOTE_CONTAINER_IDS.contains(&id.as_str()) || has_class(QUOTE_CONTAINER_CLASSES) {
                break;
            }
            if name == "blockquote" || SKIP_IDS.iter().any(|s| id.starts_with(s)) || has_class(SKIP_CLASSES) {
                if !void {
                    skipping = Some((tag.name.clone(), 1));
                }
                continue;
            }
        }
        match name {
            "br" => out.hard_newline(),
            "hr" => {
                out.newline();
                out.push_line("________________________________");
            }
            "td" | "th" if tag.closing => out.text(" "),
            _ if BLOCK.contains(&name) => out.newline(),
            _ => {}
        }
        if name == "p" && tag.closing {
            out.newline();
        }
    }
    out.finish()
}

/// Parses a tag at the start of `s` (which begins with '<'); returns it and the rest after '>'.
fn parse_tag(s: &str) -> Option<(Tag<'_>, &str)> {
    let body = s.get(1..)?;
    let (closing, body) = match body.strip_prefix('/') {
        Some(b) => (true, b),
        None => (false, body),
    };
    let name_len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_'))?;
    if name_len == 0 || !body.as_bytes().first()?.is_ascii_alphabetic() {
        return None;
    }
    let name = body[..name_len].to_ascii_lowercase();
    // Find the closing '>' outside quoted attribute values.
    let mut quote: Option<char> = None;
    let mut end = None;
    for (i, c) in body[name_len..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => {
                end = Some(name_len + i);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let attrs = &body[name_len..end];
    let self_closing = attrs.trim_end().ends_with('/');
    Some((Tag { name, closing, self_closing, attrs }, &body[end + 1..]))
}

/// Value of attribute `name` in a tag's attribute text.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let start = from + pos;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes().get(start - 1).is_some_and(|b| b.is_ascii_whitespace());
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = attrs.len() - rest.len() + 1;
        let value = attrs.get(value_start..)?.trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let inner = &value[1..];
                inner.find(q).map_or(inner, |e| &inner[..e])
            }
            _ => value.split(|c: char| c.is_ascii_whitespace() || c == '>').next().unwrap_or_default(),
        });
    }
    None
}

/// Skips the content of a raw-text element up to and including its end tag.
fn skip_raw_text<'a>(s: &'a str, name: &str) -> &'a str {
    let lower = s.to_ascii_lowercase();
    let end_tag = format!("</{name}");
    match lower.find(&end_tag) {
        Some(pos) => s[pos..].find('>').map_or("", |e| &s[pos + e + 1..]),
        None => "",
    }
}

#[derive(Default)]
struct Out {
    buf: String,
    /// A space is owed before the next word (collapsed whitespace).
    pending_space: bool,
}

impl Out {
    fn at_line_start(&self) -> bool {
        self.buf.is_empty() || self.buf.ends_with('\n')
    }

    fn text(&mut self, raw: &str) {
        let decoded = decode_entities(raw);
        for (i, word) in decoded.split(|c: char| c.is_whitespace() && c != '\u{a0}').enumerate() {
            if i > 0 {
                self.pending_space = true;
            }
            let word = word.replace('\u{a0}', " ");
            if word.is_empty() {
                continue;
            }
            if self.pending_space && !self.at_line_start() {
                self.buf.push(' ');
            }
            self.pending_space = false;
            self.buf.push_str(&word);
        }
    }

    /// Ends the current line if it has content.
    fn newline(&mut self) {
        self.pending_space = false;
        if !self.at_line_start() {
            self.buf.push('\n');
        }
    }

    /// A `<br>`: always a line break, so `<div><br></div>` makes an empty line.
    fn hard_newline(&mut self) {
        self.pending_space = false;
        self.buf.push('\n');
    }

    fn push_line(&mut self, line: &str) {
        self.buf.push_str(line);
        self.buf.push('\n');
    }

    fn finish(self) -> String {
        let lines: Vec<&str> = self.buf.lines().map(str::trim).collect();
        let mut out = String::new();
        let mut blank = 0;
        for line in lines {
            if line.is_empty() {
                blank += 1;
                continue;
            }
            if !out.is_empty() {
                out.push_str(if blank > 0 { "\n\n" } else { "\n" });
            }
            blank = 0;
            out.push_str(line);
        }
        out
    }
}

/// Decodes HTML character references (named ones mail clients use, decimal and hex).
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end =
            rest.char_indices().skip(1).take(12).find(|&(_, c)| c == ';' || !c.is_ascii_alphanumeric() && c != '#');
        if let Some((semi, ';')) = end {
            let entity = &rest[1..semi];
            if let Some(c) = entity_char(entity) {
                out.push(c);
                rest = &rest[semi + 1..];
                continue;
            }
        }
        out.push('&');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

fn entity_char(entity: &str) -> Option<char> {
    if let Some(num) = entity.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match entity {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "rsquo" => '\u{2019}',
        "lsquo" => '\u{2018}',
        "rdquo" => '\u{201d}',
        "ldquo" => '\u{201c}',
        "ndash" => '\u{2013}',
        "mdash" => '\u{2014}',
        "hellip" => '\u{2026}',
        "euro" => '€',
        "pound" => '£',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "laquo" => '«',
        "raquo" => '»',
        "iexcl" => '¡',
        "iquest" => '¿',
        "szlig" => 'ß',
        "deg" => '°',
        "middot" => '·',
        "bull" => '•',
        "zwnj" => '\u{200c}',
        "zwj" => '\u{200d}',
        _ => return latin1_letter(entity),
    })
}

/// Accented Latin letters: `&eacute;`, `&Uuml;`, `&ntilde;`, `&ccedil;`, `&oslash;`, `&aring;`, `&aelig;`...
fn latin1_letter(entity: &str) -> Option<char> {
    const ACCENTS: &[(&str, &str, &str)] = &[
        ("acute", "aeiouyAEIOUY", "áéíóúýÁÉÍÓÚÝ"),
        ("grave", "aeiouAEIOU", "àèìòùÀÈÌÒÙ"),
        ("circ", "aeiouAEIOU", "âêîôûÂÊÎÔÛ"),
        ("uml", "aeiouyAEIOUY", "äëïöüÿÄËÏÖÜŸ"),
        ("tilde", "anoANO", "ãñõÃÑÕ"),
        ("cedil", "cC", "çÇ"),
        ("slash", "oO", "øØ"),
        ("ring", "aA", "åÅ"),
    ];
    match entity {
        "aelig" => return Some('æ'),
        "AElig" => return Some('Æ'),
        "oelig" => return Some('œ'),
        "OElig" => return Some('Œ'),
        _ => {}
    }
    let mut chars = entity.chars();
    let letter = chars.next()?;
    let accent = chars.as_str();
    let (_, bases, accented) = ACCENTS.iter().find(|(a, _, _)| *a == accent)?;
    let pos = bases.chars().position(|b| b == letter)?;
    accented.chars().nth(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_reply_keeps_lines_and_drops_quote_and_signature() {
        let html = r#"<div dir="ltr"><div>Hi there,</div><div><br></div><div>We&#39;ll pay &amp; thanks.</div><div><br></div><div>Lena</div><div><br></div><span class="gmail_signature_prefix">-- </span><br><div class="gmail_signature"><div>Lena Marsh<br>Owner</div></div></div><br><div class="gmail_quote gmail_quote_container"><div class="gmail_attr">On Tue wrote:</div><blockquote>old</blockquote></div>"#;
        assert_eq!(to_text(html), "Hi there,\n\nWe'll pay & thanks.\n\nLena");
    }

    #[test]
    fn outlook_cuts_at_reply_header() {
        let html = "<html><head><style>p {margin:0}</style></head><body><div>Hello,</div><div><br></div><div>Paid.</div><div id=\"Signature\"><p>Jo Bloggs<br>CFO</p></div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> AR</div><div>old text</div></body></html>";
        assert_eq!(to_text(html), "Hello,\n\nPaid.");
    }

    #[test]
    fn blockquote_is_skipped_but_text_after_it_kept() {
        let html = "<p>Top</p><blockquote><div><blockquote>deep</blockquote>quoted</div></blockquote><p>Bottom</p>";
        assert_eq!(to_text(html), "Top\nBottom");
    }

    #[test]
    fn thunderbird_bottom_post() {
        let html = "<div class=\"moz-cite-prefix\">On 5/5/26 9:14 AM, AR wrote:<br></div><blockquote type=\"cite\"><p>Reply STOP</p></blockquote><p>Paying on the 15th.</p><div class=\"moz-signature\">-- <br>Alan</div>";
        assert_eq!(to_text(html), "Paying on the 15th.");
    }

    #[test]
    fn entities_and_malformed_markup() {
        assert_eq!(decode_entities("caf&eacute; &Uuml;ber &#x20AC;5 &bogus; &"), "café Über €5 &bogus; &");
        assert_eq!(to_text("a < b <p unterminated"), "a < b <p unterminated");
        assert_eq!(to_text("<p>x</p><script>alert('<p>')</script>y"), "x\ny");
    }
}
