//! Exact money: ISO 4217 currencies with their minor-unit exponents, and decimal text parsed
//! into integer minor units without ever going through a float.

use std::fmt;

/// The currency of an expense that names none.
pub const DEFAULT_CURRENCY: &str = "USD";

/// The largest amount of one expense, in minor units (10 billion USD, 1 trillion JPY). Kept
/// well inside 15 significant digits, so an exported amount survives any JSON reader's f64.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// Longest amount text accepted.
pub const MAX_AMOUNT_CHARS: usize = 32;

/// A currency with a defined minor unit, from the ISO 4217 table of the `iso_currency` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    /// Look up a code, case-insensitively. Codes without a minor unit (gold, SDR, testing
    /// codes) are refused: an amount in them cannot be stored exactly in minor units.
    pub fn from_code(code: &str) -> Result<Currency, String> {
        let upper = code.trim().to_ascii_uppercase();
        let Some(currency) = iso_currency::Currency::from_code(&upper) else {
            return Err(format!(
                "{code:?} is not an ISO 4217 currency code; use a code like USD, EUR or JPY"
            ));
        };
        let Some(exponent) = currency.exponent() else {
            return Err(format!(
                "{upper} ({}) has no minor unit, so its amounts cannot be recorded; use a national currency",
                currency.name()
            ));
        };
        Ok(Currency {
            code: currency.code(),
            exponent: u32::from(exponent),
        })
    }

    /// The currency of a stored row. Stored codes were checked on the way in; a code this
    /// version no longer knows is shown with two decimals rather than failing the read.
    pub fn of_stored(code: &str) -> Currency {
        Currency::from_code(code).unwrap_or(Currency {
            code: "XXX",
            exponent: 2,
        })
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for BHD.
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// Minor units as decimal text with exactly the currency's decimals: 1250 USD is "12.50".
    pub fn format(self, minor: i64) -> String {
        let digits = minor.unsigned_abs().to_string();
        let sign = if minor < 0 { "-" } else { "" };
        let places = self.exponent as usize;
        if places == 0 {
            return format!("{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = places + 1);
        let (whole, fraction) = padded.split_at(padded.len() - places);
        format!("{sign}{whole}.{fraction}")
    }

    /// Parse a positive decimal amount (`12.50`, `12.5`, `1e3`, `1.5E-1`) into minor units.
    /// Trailing zeros beyond the currency's decimals are fine (`12.500` USD); a non-zero digit
    /// beyond them is not.
    pub fn parse(self, text: &str) -> Result<i64, AmountError> {
        let decimal = Decimal::parse(text)?;
        if decimal.digits.iter().all(|d| *d == 0) {
            return Err(AmountError::NotPositive);
        }
        if decimal.negative {
            return Err(AmountError::NotPositive);
        }
        let mut digits = decimal.digits;
        let mut places = decimal.places;
        while places > 0 && digits.last() == Some(&0) {
            digits.pop();
            places -= 1;
        }
        if places > i64::from(self.exponent) {
            return Err(AmountError::TooPrecise {
                currency: self.code,
                allowed: self.exponent,
                given: places,
            });
        }
        let scale = i64::from(self.exponent) - places;
        let mut minor: i64 = 0;
        let too_large = AmountError::TooLarge {
            largest: self.format(MAX_AMOUNT_MINOR),
        };
        for digit in digits
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, scale.max(0) as usize))
        {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit)))
                .filter(|m| *m <= MAX_AMOUNT_MINOR)
                .ok_or_else(|| too_large.clone())?;
        }
        Ok(minor)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    Malformed,
    NotPositive,
    TooPrecise {
        currency: &'static str,
        allowed: u32,
        given: i64,
    },
    TooLarge {
        largest: String,
    },
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Malformed => f.write_str("is not a decimal amount like \"12.50\""),
            AmountError::NotPositive => f.write_str("must be greater than 0"),
            AmountError::TooPrecise {
                currency,
                allowed: 0,
                given,
            } => write!(
                f,
                "has {given} decimal place{}, but {currency} amounts are whole numbers",
                if *given == 1 { "" } else { "s" }
            ),
            AmountError::TooPrecise {
                currency,
                allowed,
                given,
            } => write!(
                f,
                "has {given} decimal places, but {currency} amounts have at most {allowed}"
            ),
            AmountError::TooLarge { largest } => {
                write!(f, "is larger than the largest amount recorded, {largest}")
            }
        }
    }
}

/// A decimal number as digits and a decimal-point position.
struct Decimal {
    negative: bool,
    /// Every digit, integer part then fraction, leading zeros dropped.
    digits: Vec<u8>,
    /// How many of `digits` are after the point (negative: that many zeros follow).
    places: i64,
}

impl Decimal {
    fn parse(text: &str) -> Result<Decimal, AmountError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_AMOUNT_CHARS {
            return Err(AmountError::Malformed);
        }
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => {
                let exponent: i64 = unsigned[at + 1..]
                    .parse()
                    .map_err(|_| AmountError::Malformed)?;
                (&unsigned[..at], exponent)
            }
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(AmountError::Malformed);
        }
        if mantissa.contains('.') && fraction.is_empty() {
            return Err(AmountError::Malformed);
        }
        let digits: Vec<u8> = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b - b'0')
            .skip_while(|d| *d == 0)
            .collect();
        Ok(Decimal {
            negative,
            digits,
            places: fraction.len() as i64 - exponent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::from_code(code).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn amounts_become_exact_minor_units() {
        let usd = currency("usd");
        assert_eq!(usd.code(), "USD");
        assert_eq!(usd.parse("12.50"), Ok(1250));
        assert_eq!(usd.parse("12.5"), Ok(1250));
        assert_eq!(usd.parse("12"), Ok(1200));
        assert_eq!(usd.parse("0.01"), Ok(1));
        assert_eq!(usd.parse("12.500"), Ok(1250));
        assert_eq!(usd.parse("1e3"), Ok(100_000));
        assert_eq!(usd.parse("1.5E-1"), Ok(15));
        assert_eq!(usd.parse("007.10"), Ok(710));
        assert_eq!(
            usd.parse("12.345"),
            Err(AmountError::TooPrecise {
                currency: "USD",
                allowed: 2,
                given: 3
            })
        );
        assert_eq!(usd.parse("0"), Err(AmountError::NotPositive));
        assert_eq!(usd.parse("0.00"), Err(AmountError::NotPositive));
        assert_eq!(usd.parse("-5"), Err(AmountError::NotPositive));
        for bad in [
            "",
            "abc",
            "1.",
            ".5",
            "1.2.3",
            "1e",
            "1,5",
            "--1",
            "1e9999999999999999999",
        ] {
            assert_eq!(usd.parse(bad), Err(AmountError::Malformed), "{bad}");
        }
        assert!(matches!(
            usd.parse("10000000000.01"),
            Err(AmountError::TooLarge { .. })
        ));
        assert_eq!(usd.parse("10000000000"), Ok(MAX_AMOUNT_MINOR));
        let jpy = currency("JPY");
        assert_eq!(jpy.parse("1500"), Ok(1500));
        assert_eq!(jpy.parse("1500.0"), Ok(1500));
        assert_eq!(
            jpy.parse("1500.5").map_err(|e| e.to_string()),
            Err("has 1 decimal place, but JPY amounts are whole numbers".to_owned())
        );
        let bhd = currency("BHD");
        assert_eq!(bhd.parse("1.234"), Ok(1234));
        assert!(bhd.parse("1.2345").is_err());
    }

    #[test]
    fn minor_units_print_with_the_currency_decimals() {
        assert_eq!(currency("USD").format(1250), "12.50");
        assert_eq!(currency("USD").format(5), "0.05");
        assert_eq!(currency("JPY").format(1500), "1500");
        assert_eq!(currency("BHD").format(1234), "1.234");
        assert_eq!(currency("BHD").format(-1), "-0.001");
    }

    #[test]
    fn currencies_without_minor_units_are_refused() {
        assert!(Currency::from_code("XAU").is_err());
        assert!(Currency::from_code("ABC").is_err());
        assert!(Currency::from_code("US").is_err());
    }
}
