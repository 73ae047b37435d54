//! TwiML, the XML the provider executes: `<Say>`, `<Gather input="speech">`, `<Pause>`,
//! `<Hangup/>`, and `<Message>` for SMS replies. Every text and attribute is escaped.

/// One verb of a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Say {
        text: String,
        voice: String,
        language: String,
    },
    Pause {
        secs: u32,
    },
    /// Speech input; the nested verbs play while listening.
    Gather {
        action: String,
        language: String,
        nested: Vec<Verb>,
    },
    Hangup,
    Message(String),
}

/// A whole `<Response>`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response(pub Vec<Verb>);

impl Response {
    pub fn new() -> Self {
        Response(Vec::new())
    }

    pub fn push(mut self, verb: Verb) -> Self {
        self.0.push(verb);
        self
    }

    pub fn render(&self) -> String {
        let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        if self.0.is_empty() {
            out.push_str("<Response/>");
            return out;
        }
        out.push_str("<Response>");
        for v in &self.0 {
            write_verb(&mut out, v);
        }
        out.push_str("</Response>");
        out
    }
}

fn write_verb(out: &mut String, v: &Verb) {
    match v {
        Verb::Say { text, voice, language } => {
            out.push_str(&format!(
                r#"<Say voice="{}" language="{}">{}</Say>"#,
                escape(voice),
                escape(language),
                escape(text)
            ));
        }
        Verb::Pause { secs } => out.push_str(&format!(r#"<Pause length="{secs}"/>"#)),
        Verb::Gather { action, language, nested } => {
            out.push_str(&format!(
                r#"<Gather input="speech" action="{}" method="POST" speechTimeout="auto" language="{}" actionOnEmptyResult="true">"#,
                escape(action),
                escape(language)
            ));
            for n in nested {
                write_verb(out, n);
            }
            out.push_str("</Gather>");
        }
        Verb::Hangup => out.push_str("<Hangup/>"),
        Verb::Message(text) => out.push_str(&format!("<Message>{}</Message>", escape(text))),
    }
}

/// XML escaping for text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_verbs() {
        let r = Response::new()
            .push(Verb::Gather {
                action: "https://gw.example/webhooks/telephony/voice/1/gather?turn=1&x=2".into(),
                language: "en-US".into(),
                nested: vec![Verb::Say {
                    text: "Fish & <Chips> \"Ltd\"".into(),
                    voice: "Polly.Joanna".into(),
                    language: "en-US".into(),
                }],
            })
            .push(Verb::Pause { secs: 1 })
            .push(Verb::Hangup);
        let xml = r.render();
        assert!(xml.contains(r#"action="https://gw.example/webhooks/telephony/voice/1/gather?turn=1&amp;x=2""#));
        assert!(xml.contains("Fish &amp; &lt;Chips&gt; &quot;Ltd&quot;"));
        assert!(xml.contains(r#"actionOnEmptyResult="true""#));
        assert!(xml.ends_with("<Pause length=\"1\"/><Hangup/></Response>"));
        assert!(Response::new().render().ends_with("<Response/>"));
        assert!(Response::new().push(Verb::Message("a\u{1}b".into())).render().contains("<Message>ab</Message>"));
    }
}
