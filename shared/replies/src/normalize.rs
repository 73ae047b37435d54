//! A lower-case, accent-folded, typo-corrected copy of the client's text that remembers, for each
//! byte, which bytes of the original it came from, so a rule match can be reported as a phrase of
//! the original text.

/// Longest text analysed; a client's own reply is never this long, and it bounds the work.
pub const MAX_ANALYSED_BYTES: usize = 64 * 1024;

pub struct Normalized<'a> {
    original: &'a str,
    /// Lower-case text, accents folded, runs of spaces collapsed, common typos fixed.
    pub text: Vec<u8>,
    /// For each byte of `text`: the byte range of `original` it came from.
    spans: Vec<(u32, u32)>,
}

impl<'a> Normalized<'a> {
    pub fn new(original: &'a str) -> Self {
        let original = truncate_at_char_boundary(original, MAX_ANALYSED_BYTES);
        let mut folded = Vec::with_capacity(original.len() + 8);
        let mut spans = Vec::with_capacity(original.len() + 8);
        let mut buf = String::new();
        for (at, c) in original.char_indices() {
            let range = (at as u32, (at + c.len_utf8()) as u32);
            buf.clear();
            fold_char(c, &mut buf);
            for b in buf.bytes() {
                // Collapse runs of spaces; a space never follows a newline or starts the text.
                if b == b' ' && matches!(folded.last(), None | Some(b' ') | Some(b'\n')) {
                    continue;
                }
                if b == b'\n' && folded.last() == Some(&b' ') {
                    folded.pop();
                    spans.pop();
                }
                folded.push(b);
                spans.push(range);
            }
        }
        let (text, spans) = fix_typos(folded, spans);
        Normalized { original, text, spans }
    }

    /// The original text behind `text[start..end]`.
    pub fn original(&self, start: usize, end: usize) -> &'a str {
        if start >= end || end > self.spans.len() {
            return "";
        }
        let from = self.spans[start].0 as usize;
        let to = self.spans[end - 1].1 as usize;
        self.original.get(from..to).unwrap_or("")
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.text.len()
    }
}

fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Lower-case `c`, strip its accents and map typographic variants to ASCII.
pub(crate) fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        match c {
            '\r' | '\t' | '\x0b' | '\x0c' => out.push(' '),
            '\n' => out.push('\n'),
            '`' => out.push('\''),
            c if c.is_ascii_control() => out.push(' '),
            c => out.push(c.to_ascii_lowercase()),
        }
        return;
    }
    for l in c.to_lowercase() {
        let folded: &str = match l {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ª' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ğ' | 'ģ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
            'ķ' => "k",
            'ł' | 'ľ' | 'ļ' | 'ĺ' => "l",
            'ñ' | 'ń' | 'ň' | 'ņ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' | 'º' => "o",
            'œ' => "oe",
            'ŕ' | 'ř' => "r",
            'ß' => "ss",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ť' | 'ţ' | 'ț' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            'þ' => "th",
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' | '\u{00b4}' | '\u{02bc}' => "'",
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{00ab}' | '\u{00bb}' | '\u{2033}' => "\"",
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}' | '\u{2212}' => "-",
            '\u{2026}' => "...",
            '\u{00bf}' | '\u{00a1}' => " ",
            '\u{ff1f}' => "?",
            '\u{2028}' | '\u{2029}' | '\u{0085}' => "\n",
            // Approval emoji say "ok".
            '\u{1f44d}' | '\u{1f44c}' | '\u{2705}' | '\u{2714}' | '\u{1f64f}' | '\u{1f197}' => " ok ",
            // Variation selectors and zero-width characters carry nothing.
            '\u{fe0f}' | '\u{fe0e}' | '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' => "",
            c if c.is_whitespace() => " ",
            _ => {
                out.push(l);
                continue;
            }
        };
        out.push_str(folded);
    }
}

/// Misspellings and shorthand clients write, mapped to the word the rules expect.
fn typo_fix(word: &[u8]) -> Option<&'static str> {
    Some(match word {
        b"teh" | b"hte" => "the",
        b"cna" | b"caan" => "can",
        b"allready" | b"alredy" | b"alreday" | b"allredy" | b"aready" | b"alraedy" => "already",
        b"payed" | b"piad" | b"paied" => "paid",
        b"recieved" | b"recived" | b"receieved" | b"rcvd" | b"recvd" => "received",
        b"recieve" | b"recive" => "receive",
        b"sory" | b"sorrry" | b"soory" => "sorry",
        b"agred" | b"agrred" | b"aggreed" | b"agread" => "agreed",
        b"paymnets" | b"paymets" | b"payemnts" | b"paymnts" | b"pymts" | b"pmts" => "payments",
        b"paymnet" | b"payemnt" | b"paymet" | b"pament" | b"paymnt" | b"payement" | b"paiment" | b"pymt" | b"pmt" => {
            "payment"
        }
        b"thes" => "these",
        b"pls" | b"plz" | b"plse" | b"pleae" | b"pleas" | b"pleeease" | b"pleease" => "please",
        b"ur" => "your",
        b"u" => "you",
        b"thx" | b"thnx" | b"thanx" | b"thks" | b"tks" | b"thnks" | b"tnx" | b"thanx!" | b"tx" => "thanks",
        b"dont" => "don't",
        b"cant" => "can't",
        b"wont" => "won't",
        b"didnt" => "didn't",
        b"doesnt" => "doesn't",
        b"isnt" => "isn't",
        b"wasnt" => "wasn't",
        b"arent" => "aren't",
        b"werent" => "weren't",
        b"havent" => "haven't",
        b"hasnt" => "hasn't",
        b"hadnt" => "hadn't",
        b"couldnt" => "couldn't",
        b"wouldnt" => "wouldn't",
        b"shouldnt" => "shouldn't",
        b"ive" => "i've",
        b"youre" => "you're",
        b"youve" => "you've",
        b"youll" => "you'll",
        b"theyll" => "they'll",
        b"itll" => "it'll",
        b"thats" => "that's",
        b"whats" => "what's",
        b"invoce" | b"invioce" | b"invocie" | b"invoise" | b"invoic" | b"inovice" | b"invoive" | b"invice" => "invoice",
        b"untill" | b"untl" => "until",
        b"tommorow" | b"tomorow" | b"tommorrow" | b"tmrw" | b"tmr" | b"tomorrw" | b"tomoorow" | b"2moro" => "tomorrow",
        b"wensday" | b"wednsday" | b"wedensday" | b"wendsday" => "wednesday",
        b"firday" | b"fridy" | b"fri" | b"friady" => "friday",
        b"thrusday" | b"thursay" | b"thurs" | b"thur" => "thursday",
        b"tuesady" | b"tues" | b"teusday" => "tuesday",
        b"monady" | b"mondya" => "monday",
        b"adress" | b"addres" => "address",
        b"dublicate" | b"duplicte" | b"duplicat" => "duplicate",
        b"wrng" | b"wrogn" | b"worng" => "wrong",
        b"remvoe" | b"reomve" => "remove",
        b"unsubcribe" | b"unsuscribe" | b"unsubscibe" | b"usubscribe" | b"unsubscrive" | b"unsubsribe"
        | b"unsubscrbe" | b"unsbscribe" => "unsubscribe",
        b"emial" | b"emal" | b"eamil" => "email",
        b"emials" | b"emals" | b"eamils" => "emails",
        b"mounth" | b"mnth" => "month",
        b"wk" => "week",
        b"wks" => "weeks",
        b"acct" => "account",
        b"amt" => "amount",
        b"chk" => "check",
        b"bcs" | b"cuz" | b"coz" => "because",
        b"gonna" => "going to",
        b"wanna" => "want to",
        b"gotta" => "got to",
        _ => return None,
    })
}

fn fix_typos(text: Vec<u8>, spans: Vec<(u32, u32)>) -> (Vec<u8>, Vec<(u32, u32)>) {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'\'';
    let mut out = Vec::with_capacity(text.len());
    let mut out_spans = Vec::with_capacity(spans.len());
    let mut i = 0;
    while i < text.len() {
        if !is_word(text[i]) {
            out.push(text[i]);
            out_spans.push(spans[i]);
            i += 1;
            continue;
        }
        let run_start = i;
        while i < text.len() && is_word(text[i]) {
            i += 1;
        }
        // Quotes around a word are not part of it: "'teh'" is "teh".
        let mut start = run_start;
        while start < i && text[start] == b'\'' {
            out.push(b'\'');
            out_spans.push(spans[start]);
            start += 1;
        }
        let mut end = i;
        while end > start && text[end - 1] == b'\'' {
            end -= 1;
        }
        i = end;
        if start == end {
            continue;
        }
        let word = &text[start..i];
        // A word glued to non-ASCII letters (e.g. "fri" in "frische") is not a whole word.
        let glued_before = start > 0 && text[start - 1] >= 0x80;
        let glued_after = i < text.len() && text[i] >= 0x80;
        match typo_fix(word).filter(|_| !glued_before && !glued_after) {
            Some(fixed) => {
                let range = (spans[start].0, spans[i - 1].1);
                out.extend_from_slice(fixed.as_bytes());
                out_spans.extend(std::iter::repeat_n(range, fixed.len()));
            }
            None => {
                out.extend_from_slice(word);
                out_spans.extend_from_slice(&spans[start..i]);
            }
        }
    }
    (out, out_spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_maps_back() {
        let n = Normalized::new("Déjà  PAYÉ, merci ’teh’ 👍");
        assert_eq!(String::from_utf8_lossy(&n.text), "deja paye, merci 'the' ok ");
        let at = n.text.windows(4).position(|w| w == b"paye").unwrap_or(0);
        assert_eq!(n.original(at, at + 4), "PAYÉ");
        let at = n.text.windows(3).position(|w| w == b"the").unwrap_or(0);
        assert_eq!(n.original(at, at + 3), "teh");
    }

    #[test]
    fn typo_words_only_whole() {
        let n = Normalized::new("Thx, I cant. Frische");
        assert_eq!(String::from_utf8_lossy(&n.text), "thanks, i can't. frische");
    }

    #[test]
    fn odd_input_is_safe() {
        for s in ["", "\u{202e}שלום", "\0\r\n\t", "İİİ", "ﬃ"] {
            let n = Normalized::new(s);
            assert!(n.original(0, n.len()).len() <= s.len());
        }
    }
}
