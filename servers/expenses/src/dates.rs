//! Calendar dates as the server stores them: `YYYY-MM-DD` text in UTC, which sorts like a date
//! on both back ends.

use chrono::{Datelike, Days, Months, NaiveDate, Utc};

/// The schema pattern of a date argument.
pub const DATE_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// Today in UTC.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Parse `YYYY-MM-DD`, refusing other shapes (`2026-7-1`) and days that do not exist.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    let not_a_date = || format!("{text:?} is not a date; use YYYY-MM-DD, like \"2026-07-15\"");
    if !shaped {
        return Err(not_a_date());
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let year = i32::try_from(number(0..4)).unwrap_or(0);
    NaiveDate::from_ymd_opt(year, number(5..7), number(8..10))
        .filter(|_| year >= 1)
        .ok_or_else(|| format!("{text:?} is not a day of the calendar"))
}

/// Parse `YYYY-MM` into the month's first and last days.
pub fn parse_month(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let first = parse_date(&format!("{text}-01"))
        .ok()
        .filter(|_| text.len() == 7)
        .ok_or_else(|| format!("{text:?} is not a month; use YYYY-MM, like \"2026-07\""))?;
    Ok((first, last_of_month(first)))
}

pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

fn last_of_month(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.checked_sub_days(Days::new(1)))
        .unwrap_or(first)
}

/// A calendar period around a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Monday to Sunday.
    Week,
    Month,
    Year,
}

/// The first and last days of the `span` that contains `day`.
pub fn span_around(span: Span, day: NaiveDate) -> (NaiveDate, NaiveDate) {
    match span {
        Span::Week => {
            let monday = day
                .checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday())))
                .unwrap_or(day);
            (monday, monday.checked_add_days(Days::new(6)).unwrap_or(day))
        }
        Span::Month => {
            let first = day.with_day(1).unwrap_or(day);
            (first, last_of_month(first))
        }
        Span::Year => {
            let first = NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day);
            let last = NaiveDate::from_ymd_opt(day.year(), 12, 31).unwrap_or(day);
            (first, last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn dates_must_be_real_and_well_formed() {
        assert_eq!(format_date(date("2026-02-28")), "2026-02-28");
        assert!(parse_date("2026-02-29").is_err());
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("2026-13-01").is_err());
        assert!(parse_date("2026-7-1").is_err());
        assert!(parse_date("0000-01-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn spans_are_calendar_periods() {
        let wednesday = date("2026-07-15");
        assert_eq!(
            span_around(Span::Week, wednesday),
            (date("2026-07-13"), date("2026-07-19"))
        );
        assert_eq!(
            span_around(Span::Month, date("2024-02-10")),
            (date("2024-02-01"), date("2024-02-29"))
        );
        assert_eq!(
            span_around(Span::Year, wednesday),
            (date("2026-01-01"), date("2026-12-31"))
        );
        assert_eq!(
            parse_month("2026-12"),
            Ok((date("2026-12-01"), date("2026-12-31")))
        );
        assert!(parse_month("2026-13").is_err());
        assert!(parse_month("2026-1").is_err());
        assert!(parse_month("2026-01-01").is_err());
    }
}
