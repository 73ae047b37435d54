//! SMTP sink: a real SMTP server the email service talks to with lettre. (filled in by the email work)
