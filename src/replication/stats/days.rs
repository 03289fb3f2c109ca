//! Which day a scan belongs to: the civil date of its time in the
//! merchant's time zone (`--stats-time-zone`, an IANA name; UTC by
//! default), so a China day runs from 00:00 to 24:00 Beijing time. A day is
//! stored as its number (days since 1970-01-01 of that civil date), so the
//! dates of stats answers and CSVs need no time zone at all.

use std::time::Duration;

/// Days in one time zone.
#[derive(Debug, Clone)]
pub struct Days {
    zone: jiff::tz::TimeZone,
    name: String,
}

const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);

impl Default for Days {
    fn default() -> Self {
        Days::utc()
    }
}

impl Days {
    pub fn utc() -> Days {
        Days {
            zone: jiff::tz::TimeZone::UTC,
            name: "UTC".into(),
        }
    }

    /// Days in the IANA time zone `name` (`Asia/Shanghai`).
    pub fn named(name: &str) -> Result<Days, String> {
        let zone = jiff::tz::TimeZone::get(name).map_err(|_| {
            format!("--stats-time-zone {name:?} is not an IANA time zone name (like Asia/Shanghai or UTC)")
        })?;
        Ok(Days {
            zone,
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The day of a UNIX time.
    pub fn day_of(&self, unix_seconds: i64) -> i32 {
        let Ok(at) = jiff::Timestamp::from_second(unix_seconds) else {
            return unix_seconds.div_euclid(86_400) as i32;
        };
        number(at.to_zoned_datetime(self.zone.clone()).date())
    }

    /// Today.
    pub fn today(&self) -> i32 {
        self.day_of(crate::replication::store::now_ms() / 1000)
    }

    /// How long from `unix_ms` until the next local midnight.
    pub fn until_midnight(&self, unix_ms: i64) -> Duration {
        let fallback = Duration::from_millis((86_400_000 - unix_ms.rem_euclid(86_400_000)) as u64);
        let Ok(now) = jiff::Timestamp::from_millisecond(unix_ms) else {
            return fallback;
        };
        let next = now
            .to_zoned_datetime(self.zone.clone())
            .date()
            .tomorrow()
            .and_then(|d| d.to_zoned_datetime(self.zone.clone()));
        match next {
            Ok(midnight) => Duration::from_millis((midnight.timestamp().as_millisecond() - unix_ms).max(0) as u64),
            Err(_) => fallback,
        }
    }
}

/// The number of a civil date.
fn number(date: jiff::civil::Date) -> i32 {
    date.since((jiff::Unit::Day, EPOCH)).map_or(0, |span| span.get_days())
}

/// Days since 1970-01-01 of a UNIX time, UTC.
pub fn day_of(unix_seconds: i64) -> i32 {
    unix_seconds.div_euclid(86_400) as i32
}

/// `2026-11-24` for a day number.
pub fn date_string(day: i32) -> String {
    EPOCH
        .checked_add(jiff::Span::new().days(i64::from(day)))
        .map_or_else(|_| day.to_string(), |d| d.to_string())
}

/// The day number of `2026-11-24`.
pub fn parse_date(text: &str) -> Option<i32> {
    let date: jiff::civil::Date = text.parse().ok()?;
    // Only the plain form: `2026-11-24`, not `20261124`.
    (text.len() == 10).then(|| number(date))
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
        assert_eq!(day_of(1_795_478_400), day, "2026-11-24T00:00:00Z");
        assert_eq!(day_of(1_795_478_399), day - 1);
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(date_string(-1), "1969-12-31");
    }

    #[test]
    fn a_china_day_runs_from_local_midnight_to_local_midnight() {
        let shanghai = Days::named("Asia/Shanghai").unwrap();
        let utc = Days::utc();
        // 2026-11-24T15:59:59Z is 23:59:59 in Shanghai; a second later it
        // is the 25th there, and still the 24th in UTC.
        let before = 1_795_478_400 + 15 * 3600 + 59 * 60 + 59;
        let nov24 = parse_date("2026-11-24").unwrap();
        assert_eq!(shanghai.day_of(1_795_478_400 - 8 * 3600), nov24, "00:00 in Shanghai");
        assert_eq!(shanghai.day_of(1_795_478_400 - 8 * 3600 - 1), nov24 - 1);
        assert_eq!(shanghai.day_of(before), nov24);
        assert_eq!(shanghai.day_of(before + 1), nov24 + 1);
        assert_eq!(utc.day_of(before + 1), nov24);
        assert_eq!(utc.day_of(before + 1), day_of(before + 1));
        // The next local midnight is one second away.
        assert_eq!(shanghai.until_midnight(before * 1000), Duration::from_secs(1));
        assert_eq!(utc.until_midnight(before * 1000), Duration::from_secs(8 * 3600 + 1));
        assert!(Days::named("Mars/Olympus_Mons").is_err());
    }
}
