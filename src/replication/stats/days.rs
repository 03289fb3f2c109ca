//! Day numbers (days since 1970-01-01, UTC) and their dates.

/// Days since 1970-01-01 of a UNIX time, UTC.
pub fn day_of(unix_seconds: i64) -> i32 {
    unix_seconds.div_euclid(86_400) as i32
}

/// Today, UTC.
pub fn today() -> i32 {
    day_of(crate::replication::store::now_ms() / 1000)
}

/// `2026-11-24` for a day number.
pub fn date_string(day: i32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(day) * 86_400)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| day.to_string())
}

/// The day number of `2026-11-24`.
pub fn parse_date(text: &str) -> Option<i32> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, format).ok()?;
    Some(day_of(date.midnight().assume_utc().unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        let day = parse_date("2026-11-24").unwrap();
        assert_eq!(date_string(day), "2026-11-24");
        assert_eq!(day_of(1_795_488_000), day, "2026-11-24T00:00:00Z");
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
