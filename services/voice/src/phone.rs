//! Phone numbers: only valid E.164 numbers are dialled or texted.

/// The number in E.164 (`+14155550123`) when it is a valid phone number, else `None`.
pub fn e164(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let parsed = phonenumber::parse(None, raw).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    Some(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// The sender of an inbound text normalised for matching: E.164 when valid, else the digits
/// with a leading `+` (short codes and odd senders still match themselves).
pub fn normalise_sender(raw: &str) -> String {
    e164(raw).unwrap_or_else(|| {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        if raw.trim_start().starts_with('+') { format!("+{digits}") } else { digits }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_become_e164() {
        assert_eq!(e164("+1 (415) 555-2671").as_deref(), Some("+14155552671"));
        assert_eq!(e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(e164(""), None);
        assert_eq!(e164("555-1234"), None);
        assert_eq!(e164("+1 000 000 0000"), None);
        assert_eq!(normalise_sender("+1 415 555 2671"), "+14155552671");
        assert_eq!(normalise_sender("12345"), "12345");
    }
}
