//! Money is a decimal amount with an ISO 4217 currency; never a float.
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MoneyError {
    #[error("invalid currency code {0:?}: expected three ISO 4217 letters")]
    InvalidCurrency(String),
    #[error("cannot compare {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 code, stored upper case (`USD`, `EUR`, `JPY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.trim().as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::InvalidCurrency(code.to_string()));
        }
        let mut out = [0u8; 3];
        for (o, b) in out.iter_mut().zip(bytes) {
            *o = b.to_ascii_uppercase();
        }
        Ok(Currency(out))
    }

    pub fn code(&self) -> &str {
        // Always three ASCII letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point in Stripe's smallest-unit amounts.
    pub fn minor_digits(&self) -> u32 {
        // Stripe's zero-decimal currencies.
        const ZERO: [&str; 16] = [
            "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF",
            "XPF",
        ];
        const THREE: [&str; 5] = ["BHD", "JOD", "KWD", "OMR", "TND"];
        let c = self.code();
        if ZERO.contains(&c) {
            0
        } else if THREE.contains(&c) {
            3
        } else {
            2
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// In event schemas (`docs/events/`): what is published, always upper case.
impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z]{3}$",
            "description": "ISO 4217 currency code, upper case (`USD`, `EUR`, `JPY`)."
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// From Stripe's integer amount in the currency's smallest unit.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { amount: Decimal::new(minor, currency.minor_digits()), currency }
    }

    pub fn to_minor(&self) -> Option<i64> {
        let scaled = self.amount * Decimal::from(10i64.pow(self.currency.minor_digits()));
        i64::try_from(scaled.trunc()).ok()
    }

    pub fn exceeds(&self, other: &Money) -> Result<bool, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(self.amount > other.amount)
    }
}

impl fmt::Display for Money {
    /// `3,200.00 USD` style, with the currency's own number of decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let rounded = self.amount.round_dp(digits);
        let s = format!("{:.*}", digits as usize, rounded);
        let (int, frac) = match s.split_once('.') {
            Some((i, fr)) => (i.to_string(), Some(fr.to_string())),
            None => (s.clone(), None),
        };
        let (sign, digits_only) = match int.strip_prefix('-') {
            Some(rest) => ("-", rest.to_string()),
            None => ("", int),
        };
        let mut grouped = String::new();
        for (i, ch) in digits_only.chars().enumerate() {
            if i > 0 && (digits_only.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        match frac {
            Some(fr) => write!(f, "{sign}{grouped}.{fr} {}", self.currency),
            None => write!(f, "{sign}{grouped} {}", self.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_the_currency() {
        let usd = Currency::parse("usd").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::from_minor(320000, usd).to_string(), "3,200.00 USD");
        assert_eq!(Money::from_minor(320000, jpy).to_string(), "320,000 JPY");
        assert_eq!(Money::from_minor(320000, usd).to_minor(), Some(320000));
    }

    #[test]
    fn bad_currency_is_refused() {
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("U$D").is_err());
    }

    #[test]
    fn comparing_across_currencies_is_an_error() {
        let a = Money::from_minor(1, Currency::parse("USD").unwrap());
        let b = Money::from_minor(1, Currency::parse("EUR").unwrap());
        assert!(a.exceeds(&b).is_err());
    }
}
