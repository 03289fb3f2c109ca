//! Cache logs as scan counts: what a cache in front (Varnish through
//! `varnishncsa`, a CDN through its log delivery) says it answered, one
//! request a line, attributed by the same decision as a scan
//! ([`crate::model::decide`]) and added to the same counters.
//!
//! Who counts what (`--count-source`, see README "Campaigns"):
//!
//! * `origin` (the default): the node counts every scan it answers, so a
//!   log line counts only when the cache answered without asking the
//!   origin (`cache: hit`); misses and passes were counted when the origin
//!   answered them.
//! * `cache-log`: the node does not count what trusted proxies ask, and
//!   the log counts every line, hits and misses alike.
//!
//! Either way each scan is counted once. A line says when it was answered,
//! so it is counted on its own day (in `--stats-time-zone`), not the day
//! it arrived.
//!
//! Two line formats: NDJSON (what `POST /admin/v1/ingest` takes, see
//! [`LogLine`]) and `varnishncsa` lines in [`VARNISHNCSA_FORMAT`], which
//! `qrlaunch ingest` turns into NDJSON.

use crate::edge::config::CountSource;
use crate::model::client_class::{classify, ClientClass, CountClass};
use crate::model::decide::{decide, CodeHosts, Decision, Target};
use crate::model::domain::{Availability, EntryKind};
use crate::model::table::Snapshot;
use crate::replication::stats::{CountKey, Days, ScanCounts};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// Longest line taken (longer lines are malformed): a request target is
/// at most 8 KiB, a User-Agent a few hundred bytes.
pub const MAX_LINE: usize = 16 * 1024;

/// The `varnishncsa -F` format `qrlaunch ingest --format varnishncsa`
/// reads: tab-separated, the User-Agent last (it may hold anything but a
/// tab).
pub const VARNISHNCSA_FORMAT: &str = "%{sec}t\\t%m\\t%{Host}i\\t%U%q\\t%{X-Forwarded-Proto}i\\t%{X-QR-Client}i\\t%s\\t%{Varnish:handling}x\\t%{User-agent}i";

/// One request a cache answered, as sent to `POST /admin/v1/ingest`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine<'a> {
    /// When it was answered: RFC 3339 (`2026-12-06T08:00:00Z`) or a UNIX
    /// time as a number: seconds (fractions allowed), or milli-, micro- or
    /// nanoseconds (told apart by size, as CDNs log them).
    #[schema(value_type = serde_json::Value)]
    #[serde(alias = "EdgeStartTimestamp")]
    pub time: Time<'a>,
    /// The Host header (`go.example.com`, maybe with a port).
    #[serde(borrow, alias = "ClientRequestHost")]
    pub host: Cow<'a, str>,
    /// Path and query as requested (`/download?channel=poster1`).
    #[serde(borrow, alias = "ClientRequestURI")]
    pub target: Cow<'a, str>,
    /// `http` or `https` (the default).
    #[serde(
        default,
        borrow,
        alias = "ClientRequestScheme",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheme: Option<Cow<'a, str>>,
    /// The request method; lines of other methods than GET and HEAD are
    /// not scans.
    #[serde(
        default,
        borrow,
        alias = "ClientRequestMethod",
        skip_serializing_if = "Option::is_none"
    )]
    pub method: Option<Cow<'a, str>>,
    /// The client's User-Agent, classified as a scan's is when `class` is
    /// absent.
    #[serde(
        default,
        borrow,
        alias = "ClientRequestUserAgent",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_agent: Option<Cow<'a, str>>,
    /// The client class (`ios`, `android`, `wechat`, `inapp`, `desktop`,
    /// `other`).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub class: Option<Cow<'a, str>>,
    /// The status the cache sent; `5xx` lines are not scans answered.
    #[serde(default, alias = "EdgeResponseStatus", skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `hit`, `miss`, `pass` (or `pipe`, `synth` from Varnish; `stale`,
    /// `expired`, `bypass`, … from Cloudflare).
    #[serde(default, borrow, alias = "CacheCacheStatus", skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cow<'a, str>>,
}

/// A line's time: RFC 3339 text or UNIX seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Time<'a> {
    Seconds(f64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl Time<'_> {
    /// UNIX seconds, or why not.
    fn unix(&self) -> Result<i64, &'static str> {
        match self {
            Time::Seconds(s) if !s.is_finite() || *s < 0.0 || *s >= 1e20 => Err("`time` is out of range"),
            // Seconds reach 1e11 in the year 5138; smaller units are larger.
            Time::Seconds(s) => {
                let seconds = match *s {
                    s if s >= 1e17 => s / 1e9,
                    s if s >= 1e14 => s / 1e6,
                    s if s >= 1e11 => s / 1e3,
                    s => s,
                };
                Ok(seconds.floor() as i64)
            }
            Time::Text(text) => text
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_second())
                .map_err(|_| "`time` must be RFC 3339 (2026-12-06T08:00:00Z) or UNIX seconds"),
        }
    }
}

/// How the cache handled a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// Answered from the cache: the origin never saw it.
    Hit,
    /// Asked the origin (a miss, a pass, a pipe).
    Origin,
    /// Made up by the cache (Varnish's synth): not a scan answer.
    Synth,
}

impl Handling {
    fn parse(text: &str) -> Option<Handling> {
        match text.to_ascii_lowercase().as_str() {
            "hit" | "stale" | "updating" | "revalidated" => Some(Handling::Hit),
            "miss" | "pass" | "pipe" | "expired" | "bypass" | "dynamic" | "ignored" | "deferred" => {
                Some(Handling::Origin)
            }
            "synth" => Some(Handling::Synth),
            _ => None,
        }
    }
}

/// Why a line was not counted, as reported in an ingest answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Not a JSON object of the documented fields, or a field is wrong.
    Malformed,
    /// The origin answered it and counted it (`--count-source origin`).
    CountedByOrigin,
    /// Its day is past the kept days.
    TooOld,
    /// More than [`MAX_FUTURE`] seconds ahead of this node's clock.
    InTheFuture,
    /// Not a scan: another method, a health check, the resolve API, a
    /// verification file, a pass-through, an answer the cache made up or a
    /// `5xx`, an entry that is not live.
    NotAScan,
}

impl Skip {
    pub const ALL: [Skip; 5] = [
        Skip::Malformed,
        Skip::CountedByOrigin,
        Skip::TooOld,
        Skip::InTheFuture,
        Skip::NotAScan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Malformed => "malformed",
            Skip::CountedByOrigin => "counted_by_origin",
            Skip::TooOld => "too_old",
            Skip::InTheFuture => "in_the_future",
            Skip::NotAScan => "not_a_scan",
        }
    }
}

/// How far ahead of this node's clock a line may be (clocks drift).
pub const MAX_FUTURE: i64 = 600;

/// What the counting of a batch needs to know.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub code_hosts: &'a CodeHosts,
    pub days: &'a Days,
    pub source: CountSource,
    /// The first day still kept.
    pub oldest_day: i32,
    /// Now, in UNIX seconds.
    pub now: i64,
    /// Where the counts go: it also knows the key of 404s on a host
    /// without rules (a public URL's host, or the other hosts).
    pub counts: &'a ScanCounts,
}

/// A batch's counts and what was skipped, before they join the pending
/// counts.
#[derive(Debug, Default)]
pub struct Tally {
    pub lines: u64,
    pub counted: u64,
    pub skipped: HashMap<Skip, u64>,
    /// The first malformed lines: line number (from 1) and why.
    pub errors: Vec<(u64, String)>,
    pub counts: HashMap<CountKey, u64>,
    key: String,
}

/// At most this many malformed lines are described in an answer.
pub const MAX_ERRORS: usize = 20;

impl Tally {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    fn skip(&mut self, why: Skip) {
        *self.skipped.entry(why).or_default() += 1;
    }

    /// Counts one NDJSON line (blank lines are not lines).
    pub fn add_json(&mut self, cx: &Context<'_>, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        let result = if line.len() > MAX_LINE {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            serde_json::from_slice::<LogLine<'_>>(line).map_err(|e| e.to_string())
        };
        match result {
            Ok(parsed) => self.add(cx, &parsed),
            Err(message) => self.malformed(message),
        }
    }

    fn malformed(&mut self, message: String) {
        self.skip(Skip::Malformed);
        if self.errors.len() < MAX_ERRORS {
            self.errors.push((self.lines, message));
        }
    }

    /// Counts one line (already counted in `lines`).
    fn add(&mut self, cx: &Context<'_>, line: &LogLine<'_>) {
        match self.attribute(cx, line) {
            Ok(Some((key, value))) => {
                self.counted += 1;
                *self.counts.entry(key).or_default() += 1;
                if let Some(value) = value {
                    *self.counts.entry(value).or_default() += 1;
                }
            }
            Ok(None) => {}
            Err(Err(message)) => self.malformed(message),
            Err(Ok(why)) => self.skip(why),
        }
    }

    /// What `line` counts as: `Ok(Some((key, value)))` a count (and the
    /// count by value of a rule with `count_by`), `Err(Ok(skip))` a skip,
    /// `Err(Err(message))` a malformed line.
    #[allow(clippy::type_complexity)]
    fn attribute(
        &mut self,
        cx: &Context<'_>,
        line: &LogLine<'_>,
    ) -> Result<Option<(CountKey, Option<CountKey>)>, Result<Skip, String>> {
        let malformed = |m: &str| Err(Err(m.to_string()));
        let time = line.time.unix().map_err(|m| Err(m.to_string()))?;
        let scheme = match line.scheme.as_deref() {
            None | Some("") | Some("-") => "https",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(_) => return malformed("`scheme` must be http or https"),
        };
        if !line.target.starts_with('/') {
            return malformed("`target` must be a path and query starting with /");
        }
        if line.host.is_empty() {
            return malformed("`host` is empty");
        }
        let class = match line.class.as_deref().filter(|c| !c.is_empty() && *c != "-") {
            Some(name) => match ClientClass::parse(name.as_bytes()) {
                Some(class) => class,
                None => return malformed("`class` must be ios, android, wechat, inapp, desktop or other"),
            },
            None => classify(line.user_agent.as_deref().map(str::as_bytes)),
        };
        let handling = match line.cache.as_deref().filter(|c| !c.is_empty() && *c != "-") {
            Some(text) => match Handling::parse(text) {
                Some(h) => Some(h),
                None => return malformed("`cache` must be hit, miss or pass"),
            },
            None => None,
        };
        if let Some(method) = line.method.as_deref() {
            if !method.eq_ignore_ascii_case("GET") && !method.eq_ignore_ascii_case("HEAD") {
                return Err(Ok(Skip::NotAScan));
            }
        }
        if handling == Some(Handling::Synth) || line.status.is_some_and(|s| s >= 500) {
            return Err(Ok(Skip::NotAScan));
        }
        let target = line.target.as_ref();
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        if target.len() > crate::edge::http::service::MAX_TARGET_LEN
            || crate::edge::http::service::Endpoint::of(path) != crate::edge::http::service::Endpoint::Scan
        {
            return Err(Ok(Skip::NotAScan));
        }
        let day = cx.days.day_of(time);
        if day < cx.oldest_day {
            return Err(Ok(Skip::TooOld));
        }
        if time > cx.now + MAX_FUTURE {
            return Err(Ok(Skip::InTheFuture));
        }
        if cx.source == CountSource::Origin {
            match handling {
                Some(Handling::Hit) => {}
                Some(_) => return Err(Ok(Skip::CountedByOrigin)),
                None => {
                    return malformed(
                        "`cache` is needed with --count-source origin (hits count, misses were counted by the origin)",
                    )
                }
            }
        }
        let target = Target {
            scheme,
            host: &line.host,
            path,
            path_and_query: target,
        };
        let counted = match decide(cx.snapshot, cx.code_hosts, &target, &mut self.key) {
            Decision::Code(hit) if hit.availability(time) == Availability::Live => (
                (
                    EntryKind::Code,
                    hit.code.unwrap_or_default().into(),
                    CountClass::Client(class),
                    day,
                ),
                None,
            ),
            Decision::Rule(hit) if hit.availability(time) == Availability::Live => {
                let rule = hit.prefix_key.unwrap_or_default();
                let value = hit.profile.key.count_by.as_ref().map(|param| {
                    let key = cx.counts.value_key_of(rule, param.as_str(), target.path_and_query, day);
                    (EntryKind::Rule, key.into(), CountClass::Client(class), day)
                });
                ((EntryKind::Rule, rule.into(), CountClass::Client(class), day), value)
            }
            Decision::NotFound => {
                let host = crate::model::url_key::host_of_key(&self.key);
                let host = if cx.snapshot.has_rules_on(host) {
                    host
                } else {
                    cx.counts.not_found_key(host)
                };
                ((EntryKind::Host, host.into(), CountClass::NotFound, day), None)
            }
            _ => return Err(Ok(Skip::NotAScan)),
        };
        Ok(Some(counted))
    }
}

/// One `varnishncsa` line in [`VARNISHNCSA_FORMAT`] as a [`LogLine`].
pub fn from_varnishncsa(line: &str) -> Result<LogLine<'_>, &'static str> {
    let mut fields = line.trim_end_matches(['\r', '\n']).splitn(9, '\t');
    let mut next = || {
        fields
            .next()
            .ok_or("fewer fields than the format has (see VARNISHNCSA_FORMAT)")
    };
    let dash = |s: &str| (s != "-" && !s.is_empty()).then(|| Cow::Owned(s.to_string()));
    let time: f64 = next()?.parse().map_err(|_| "the first field is not UNIX seconds")?;
    let method = dash(next()?);
    let host = next()?.to_string();
    let target = next()?.to_string();
    let scheme = dash(next()?);
    let class = dash(next()?);
    let status = next()?.parse().ok();
    let cache = dash(next()?);
    let user_agent = dash(next()?);
    Ok(LogLine {
        time: Time::Seconds(time),
        host: host.into(),
        target: target.into(),
        scheme,
        method,
        user_agent,
        class,
        status,
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table::Snapshot;

    fn snapshot() -> Snapshot {
        let table = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/a/index"}
{"code":"old","appid":"wx1234567890abcdef","path":"pages/a/index","disabled":true}
{"prefix":"https://legacy.example.com/download","appid":"wx1234567890abcdef","path":"pages/b/index"}"#;
        Snapshot::new(crate::model::table_file::load(table.as_bytes()).unwrap().table)
    }

    fn tally(source: CountSource, lines: &[&str]) -> Tally {
        let snapshot = snapshot();
        let code_hosts = CodeHosts::parse(&["https://go.example.com/".to_string()]).unwrap();
        let days = Days::named("Asia/Shanghai").unwrap();
        let counts = ScanCounts::new(["go.example.com".to_string()], days.clone());
        let now = 1_795_478_400 + 86_400 * 10;
        let cx = Context {
            snapshot: &snapshot,
            code_hosts: &code_hosts,
            days: &days,
            source,
            oldest_day: days.day_of(now) - 30,
            now,
            counts: &counts,
        };
        let mut tally = Tally::default();
        for line in lines {
            tally.add_json(&cx, line.as_bytes());
        }
        tally
    }

    fn counted(tally: &Tally) -> Vec<(String, &'static str, String, u64)> {
        let mut rows: Vec<_> = tally
            .counts
            .iter()
            .map(|((kind, key, class, day), n)| {
                (
                    format!("{kind:?} {key}"),
                    class.as_str(),
                    crate::replication::stats::date_string(*day),
                    *n,
                )
            })
            .collect();
        rows.sort();
        rows
    }

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";

    #[test]
    fn lines_count_like_scans_on_their_own_local_day() {
        let lines = [
            // 2026-11-24 23:59:59 in Shanghai, then a second later.
            &format!(
                r#"{{"time":1795535999,"host":"go.example.com","target":"/spring24","user_agent":"{IPHONE}","cache":"hit"}}"#
            ) as &str,
            r#"{"time":"2026-11-24T16:00:00Z","host":"GO.example.com:443","target":"/spring24?utm=x","class":"android","cache":"miss","status":200}"#,
            r#"{"time":"2026-11-24T16:00:01+00:00","host":"legacy.example.com","target":"/download?channel=poster1","class":"wechat","cache":"pass"}"#,
            r#"{"time":1795535999.5,"host":"legacy.example.com","target":"/nothing","cache":"hit","status":404}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/nope","cache":"hit"}"#,
            r#"{"time":1795535999,"host":"elsewhere.example","target":"/x","cache":"hit","scheme":"http"}"#,
        ];
        let tally = tally(CountSource::CacheLog, &lines);
        assert_eq!(
            (tally.lines, tally.counted, tally.skipped_total()),
            (6, 6, 0),
            "{:?}",
            tally.errors
        );
        assert_eq!(
            counted(&tally),
            [
                ("Code spring24".into(), "android", "2026-11-25".into(), 1),
                ("Code spring24".into(), "ios", "2026-11-24".into(), 1),
                ("Host (other hosts)".into(), "not_found", "2026-11-24".into(), 1),
                ("Host go.example.com".into(), "not_found", "2026-11-24".into(), 1),
                ("Host legacy.example.com".into(), "not_found", "2026-11-24".into(), 1),
                (
                    "Rule https://legacy.example.com/download".into(),
                    "wechat",
                    "2026-11-25".into(),
                    1
                ),
            ]
        );
        // With the origin counting, only the hits are the log's to count.
        let tally = tally_origin(&lines);
        assert_eq!(
            (tally.counted, tally.skipped.get(&Skip::CountedByOrigin)),
            (4, Some(&2))
        );
    }

    fn tally_origin(lines: &[&str]) -> Tally {
        tally(CountSource::Origin, lines)
    }

    #[test]
    fn bad_and_foreign_lines_are_skipped_with_a_reason() {
        let lines = [
            "not json",
            r#"{"time":"yesterday","host":"go.example.com","target":"/spring24","cache":"hit"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"spring24","cache":"hit"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"hit","class":"robot"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"maybe"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"hit","scheme":"ftp"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24"}"#,
            r#"{"time":1,"host":"go.example.com","target":"/spring24","cache":"hit"}"#,
            r#"{"time":2795535999,"host":"go.example.com","target":"/spring24","cache":"hit"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"hit","method":"POST"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/healthz","cache":"pass"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/v1/resolve?url=x","cache":"pass"}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"synth","status":400}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/spring24","cache":"hit","status":503}"#,
            r#"{"time":1795535999,"host":"go.example.com","target":"/old","cache":"hit"}"#,
            "",
            "   ",
        ];
        let tally = tally_origin(&lines);
        assert_eq!(tally.lines, 15);
        assert_eq!(tally.counted, 0);
        let by = |s| tally.skipped.get(&s).copied().unwrap_or(0);
        assert_eq!(by(Skip::Malformed), 7, "{:?}", tally.errors);
        assert_eq!(by(Skip::TooOld), 1);
        assert_eq!(by(Skip::InTheFuture), 1);
        assert_eq!(by(Skip::NotAScan), 6);
        assert_eq!(tally.errors[0].0, 1);
        assert!(
            tally.errors.iter().any(|(_, m)| m.contains("class")),
            "{:?}",
            tally.errors
        );
    }

    #[test]
    fn cloudflare_logpush_fields_are_read_too() {
        let lines = [
            r#"{"EdgeStartTimestamp":1795535999000000000,"ClientRequestHost":"go.example.com","ClientRequestURI":"/spring24","ClientRequestScheme":"https","ClientRequestMethod":"GET","ClientRequestUserAgent":"curl/8","EdgeResponseStatus":302,"CacheCacheStatus":"hit","RayID":"x"}"#,
            r#"{"EdgeStartTimestamp":1795535999123,"ClientRequestHost":"go.example.com","ClientRequestURI":"/spring24","CacheCacheStatus":"stale"}"#,
            r#"{"EdgeStartTimestamp":"2026-11-24T15:59:59Z","ClientRequestHost":"go.example.com","ClientRequestURI":"/spring24","CacheCacheStatus":"expired"}"#,
        ];
        let tally = tally_origin(&lines);
        assert_eq!(tally.counted, 2, "{:?}", tally.errors);
        assert_eq!(tally.skipped.get(&Skip::CountedByOrigin), Some(&1));
        assert!(counted(&tally).iter().all(|(_, _, day, _)| day == "2026-11-24"));
    }

    #[test]
    fn varnishncsa_lines_become_log_lines() {
        let line = format!("1795535999\tGET\tgo.example.com\t/spring24?x=1\t-\tios\t302\thit\t{IPHONE}\twith\ttabs\n");
        let parsed = from_varnishncsa(&line).unwrap();
        assert_eq!(parsed.target, "/spring24?x=1");
        assert_eq!(parsed.scheme, None);
        assert_eq!(parsed.class.as_deref(), Some("ios"));
        assert_eq!(parsed.status, Some(302));
        assert_eq!(parsed.user_agent.as_deref(), Some(&*format!("{IPHONE}\twith\ttabs")));
        let json = serde_json::to_string(&parsed).unwrap();
        let tally = tally_origin(&[&json]);
        assert_eq!(tally.counted, 1, "{json} {:?}", tally.errors);
        assert!(from_varnishncsa("1795535999\tGET\tgo.example.com").is_err());
        assert!(from_varnishncsa("yesterday\tGET\tgo.example.com\t/\t-\t-\t200\thit\t-").is_err());
    }
}
