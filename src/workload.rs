//! Synthetic tables and request mixes for benchmarks and the load test.
//!
//! Everything is derived from a seed, so two runs (or qrlaunch and nginx in
//! one comparison) see exactly the same codes, rules and requests.
//!
//! * Codes: 8 characters of base62, a bijective scramble of the index, so
//!   they are unique and look random; a 30-odd character query; one of a
//!   handful of appids and page paths (what a real merchant table looks like).
//! * Rules: `http://` legacy download URLs on a few dozen hosts, in the three
//!   shapes WeChat rules take: query prefix, sub-path (`…/`), exact path.
//! * Requests: known codes, URLs some rule matches, and unknown codes
//!   (9 characters, so never in the table), in a given mix.

use crate::model::domain::Line;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub codes: usize,
    pub rules: usize,
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            codes: 1_000_000,
            rules: 10_000,
            seed: 42,
        }
    }
}

/// Shares of each kind of request, in percent; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub known_codes: u8,
    pub legacy_urls: u8,
    pub unknown: u8,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            known_codes: 90,
            legacy_urls: 8,
            unknown: 2,
        }
    }
}

/// Which kind a generated request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    Code,
    Legacy,
    Unknown,
}

/// One request to send: `Host` header and request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: RequestKind,
    pub host: String,
    pub target: String,
}

/// The host launch codes are served on.
pub const CODE_HOST: &str = "go.example.com";

const APPIDS: [&str; 4] = [
    "wx1234567890abcdef",
    "wxfedcba0987654321",
    "wx0123456789abcdef",
    "wxaaaabbbbccccdddd",
];
const PATHS: [&str; 6] = [
    "pages/index/index",
    "pages/promo/index",
    "pages/product/detail",
    "pages/store/index",
    "pages/coupon/claim",
    "pages/download/index",
];
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^8: the space of 8-character codes.
const CODE_SPACE: u64 = 218_340_105_584_896;
/// Odd and not a multiple of 31, so multiplying by it permutes `CODE_SPACE`.
const SCRAMBLE: u64 = (0x5851_F42D_4C95_7F2D % CODE_SPACE) | 1;
const _: () = assert!(
    SCRAMBLE % 2 == 1 && !SCRAMBLE.is_multiple_of(31),
    "SCRAMBLE must be coprime with 62"
);

/// The `i`-th code of a table generated with `seed`.
pub fn code(seed: u64, i: usize) -> String {
    let x = (i as u64).wrapping_add(seed) % CODE_SPACE;
    let scrambled = ((u128::from(x) * u128::from(SCRAMBLE)) % u128::from(CODE_SPACE)) as u64;
    base62(scrambled, 8)
}

fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("base62 is ASCII")
}

/// The `j`-th rule's host.
fn rule_host(j: usize) -> String {
    format!("www{}.legacy-example.com", j % 37)
}

/// The `j`-th rule's prefix; the shape cycles through query prefix,
/// sub-path and exact path.
pub fn rule_prefix(j: usize) -> String {
    let host = rule_host(j);
    match j % 3 {
        0 => format!("http://{host}/app/download?channel=c{j:06}"),
        1 => format!("http://{host}/d/{j:06}/"),
        _ => format!("http://{host}/get/app{j:06}"),
    }
}

/// The `i`-th code line.
pub fn code_line(seed: u64, i: usize) -> Line {
    Line {
        code: Some(code(seed, i)),
        appid: Some(APPIDS[i % APPIDS.len()].into()),
        path: Some(PATHS[i % PATHS.len()].into()),
        query: Some(format!("id={i:07}&from=poster&ch=s{:03}", i % 997)),
        env_version: Some("release".into()),
        ..Line::default()
    }
}

/// The `j`-th rule line.
pub fn rule_line(j: usize) -> Line {
    Line {
        prefix: Some(rule_prefix(j)),
        appid: Some(APPIDS[j % APPIDS.len()].into()),
        path: Some(PATHS[j % PATHS.len()].into()),
        query: Some(format!("from=legacy&r={j}")),
        env_version: Some("release".into()),
        ..Line::default()
    }
}

/// Every line of the table: codes first, then rules.
pub fn table_lines(spec: Spec) -> impl Iterator<Item = Line> {
    (0..spec.codes)
        .map(move |i| code_line(spec.seed, i))
        .chain((0..spec.rules).map(rule_line))
}

/// A URL that the `j`-th rule matches (and no longer rule does).
pub fn legacy_target(j: usize, salt: u64) -> String {
    let prefix = rule_prefix(j);
    let path_and_query = &prefix[prefix.find("://").map_or(0, |i| i + 3)..];
    let target = &path_and_query[path_and_query.find('/').unwrap_or(0)..];
    match j % 3 {
        0 => format!("{target}&utm={salt}"),
        1 => format!("{target}item{salt}"),
        _ => format!("{target}?from=qr{salt}"),
    }
}

/// `count` requests drawn with the seed, in the given mix.
pub fn requests(spec: Spec, mix: Mix, count: usize) -> Vec<Request> {
    let mut rng = SplitMix64(spec.seed ^ 0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let roll = (rng.next() % 100) as u8;
            let pick = rng.next();
            if roll < mix.known_codes && spec.codes > 0 {
                let i = (pick % spec.codes as u64) as usize;
                Request {
                    kind: RequestKind::Code,
                    host: CODE_HOST.into(),
                    target: format!("/{}", code(spec.seed, i)),
                }
            } else if roll < mix.known_codes.saturating_add(mix.legacy_urls) && spec.rules > 0 {
                let j = (pick % spec.rules as u64) as usize;
                Request {
                    kind: RequestKind::Legacy,
                    host: rule_host(j),
                    target: legacy_target(j, pick % 1000),
                }
            } else {
                Request {
                    kind: RequestKind::Unknown,
                    host: CODE_HOST.into(),
                    target: format!("/{}", base62(pick % CODE_SPACE, 9)),
                }
            }
        })
        .collect()
}

/// Sebastiano Vigna's splitmix64: tiny, fast, and its output for a seed
/// never changes with a crate upgrade, which keeps workloads reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::table::TableBuilder;
    use crate::model::url_key;

    #[test]
    fn generated_tables_are_valid_and_every_request_resolves_as_intended() {
        let spec = Spec {
            codes: 20_000,
            rules: 3_000,
            seed: 7,
        };
        let mut builder = TableBuilder::new();
        for line in table_lines(spec) {
            builder.insert(&line.validate().unwrap());
        }
        let table = builder.build();
        assert_eq!((table.code_count(), table.rule_count()), (20_000, 3_000));
        let requests = requests(spec, Mix::default(), 5_000);
        let mut key = String::new();
        for r in &requests {
            url_key::write_request_key(&mut key, "http", &r.host, &r.target).unwrap();
            let as_code = table.code(&r.target[1..]);
            match r.kind {
                RequestKind::Code => assert!(as_code.is_some(), "{r:?}"),
                RequestKind::Legacy => assert!(table.rule(&key).is_some(), "{r:?}"),
                RequestKind::Unknown => assert!(as_code.is_none() && table.rule(&key).is_none(), "{r:?}"),
            }
        }
        let legacy = requests.iter().filter(|r| r.kind == RequestKind::Legacy).count();
        assert!((250..550).contains(&legacy), "about 8% legacy, got {legacy}");
        assert_eq!(
            requests,
            super::requests(spec, Mix::default(), 5_000),
            "same seed, same requests"
        );
    }
}
