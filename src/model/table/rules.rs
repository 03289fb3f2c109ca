//! Legacy URL rules: longest matching prefix in O(log n).
//!
//! Rule keys (see [`crate::model::url_key`]) are kept sorted, and each remembers
//! its *parent*: the longest other key that is a prefix of it. To match a
//! scanned URL `u`, binary-search the greatest key `e <= u`. Any key `p` that
//! is a prefix of `u` sorts between itself and `u`, so `p <= e <= u` and
//! `e` starts with `p`: every candidate is on `e`'s parent chain. Walking up
//! the chain, the first key no longer than the common prefix of `e` and `u`
//! is the longest prefix of `u`; if WeChat's boundary rule rejects it (a
//! path prefix must end at `/`, `?` or the end) the walk goes on to its
//! parent. Lookups therefore cost one binary search plus a short walk, with
//! no allocation, whatever the number of rules.

use crate::model::url_key::boundary_ok;

const NO_PARENT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleRecord {
    /// `key`, then the prefix as written, then `query`, in the arena.
    start: u32,
    key_len: u16,
    original_len: u16,
    query_len: u16,
    parent: u32,
    pub profile: u32,
}

/// A rule waiting for [`RuleIndex::build`].
pub(crate) struct PendingRule {
    pub key: Box<str>,
    pub original: Box<str>,
    pub query: Box<str>,
    pub profile: u32,
}

pub(crate) struct RuleIndex {
    records: Vec<RuleRecord>,
    arena: String,
}

/// A matched rule.
pub(crate) struct RuleMatch<'t> {
    pub key: &'t str,
    pub original_prefix: &'t str,
    pub query: &'t str,
    pub profile: u32,
    /// The rule's index, for its scan counters.
    pub index: usize,
}

impl RuleIndex {
    pub fn empty() -> RuleIndex {
        RuleIndex {
            records: Vec::new(),
            arena: String::new(),
        }
    }

    /// Indexes `pending`; of two rules with one key, the later one stays.
    pub fn build(mut pending: Vec<PendingRule>) -> RuleIndex {
        // Stable, so that of equal keys the last inserted ends up last.
        pending.sort_by(|a, b| a.key.cmp(&b.key));
        let mut kept: Vec<PendingRule> = Vec::with_capacity(pending.len());
        for rule in pending {
            match kept.last_mut() {
                Some(last) if last.key == rule.key => *last = rule,
                _ => kept.push(rule),
            }
        }
        let pending = kept;
        let bytes = pending
            .iter()
            .map(|p| p.key.len() + p.original.len() + p.query.len())
            .sum();
        let mut arena = String::with_capacity(bytes);
        let mut records = Vec::with_capacity(pending.len());
        // Keys on the chain from the root to the current key, as indices.
        let mut chain: Vec<u32> = Vec::new();
        for p in &pending {
            while let Some(&top) = chain.last() {
                let top_key = record_key(&arena, &records[top as usize]);
                if p.key.starts_with(top_key) {
                    break;
                }
                chain.pop();
            }
            let start = u32::try_from(arena.len()).expect("rule arena below 4 GiB");
            arena.push_str(&p.key);
            arena.push_str(&p.original);
            arena.push_str(&p.query);
            let id = u32::try_from(records.len()).expect("fewer than 2^32 rules");
            records.push(RuleRecord {
                start,
                key_len: len16(&p.key),
                original_len: len16(&p.original),
                query_len: len16(&p.query),
                parent: chain.last().copied().unwrap_or(NO_PARENT),
                profile: p.profile,
            });
            chain.push(id);
        }
        RuleIndex { records, arena }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The rule with the longest prefix matching `key`, a normalized URL.
    #[cfg(test)]
    pub fn longest_match(&self, key: &str) -> Option<RuleMatch<'_>> {
        self.longest_match_where(key, |_| true)
    }

    /// Like [`RuleIndex::longest_match`], skipping rules whose prefix key
    /// `usable` rejects (rules a newer write replaced or deleted).
    pub fn longest_match_where(&self, key: &str, usable: impl Fn(&str) -> bool) -> Option<RuleMatch<'_>> {
        let after = self.records.partition_point(|r| record_key(&self.arena, r) <= key);
        let mut id = u32::try_from(after.checked_sub(1)?).ok()?;
        let nearest = record_key(&self.arena, &self.records[id as usize]);
        let common = common_prefix_len(nearest, key);
        while id != NO_PARENT {
            let record = &self.records[id as usize];
            let prefix = record_key(&self.arena, record);
            if prefix.len() <= common && boundary_ok(prefix, key) && usable(prefix) {
                return Some(self.view(id as usize));
            }
            id = record.parent;
        }
        None
    }

    /// Every rule as (key, prefix as written, query, profile), sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &str, u32)> + '_ {
        (0..self.records.len()).map(|i| {
            let m = self.view(i);
            (m.key, m.original_prefix, m.query, m.profile)
        })
    }

    fn view(&self, index: usize) -> RuleMatch<'_> {
        let r = &self.records[index];
        let original_start = r.start as usize + usize::from(r.key_len);
        let query_start = original_start + usize::from(r.original_len);
        RuleMatch {
            key: &self.arena[r.start as usize..original_start],
            original_prefix: &self.arena[original_start..query_start],
            query: &self.arena[query_start..query_start + usize::from(r.query_len)],
            profile: r.profile,
            index,
        }
    }

    /// Every rule's normalized key with its index.
    pub fn keys(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| (record_key(&self.arena, r), i))
    }
}

fn record_key<'a>(arena: &'a str, r: &RuleRecord) -> &'a str {
    let start = r.start as usize;
    &arena[start..start + usize::from(r.key_len)]
}

fn len16(s: &str) -> u16 {
    u16::try_from(s.len()).expect("rule strings are validated to fit u16")
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::url_key::{normalize_absolute, prefix_matches};

    fn index(prefixes: &[&str]) -> RuleIndex {
        let pending = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| PendingRule {
                key: normalize_absolute(p).unwrap().into(),
                original: (*p).into(),
                query: "".into(),
                profile: i as u32,
            })
            .collect();
        RuleIndex::build(pending)
    }

    fn matched<'a>(rules: &[&'a str], url: &str) -> Option<&'a str> {
        let idx = index(rules);
        let key = normalize_absolute(url).unwrap();
        idx.longest_match(&key).map(|m| rules[m.profile as usize])
    }

    #[test]
    fn longest_prefix_wins() {
        let rules = [
            "https://www.example.com/",
            "https://www.example.com/app/",
            "https://www.example.com/app/download?channel=",
            "https://www.example.com/app/download?channel=poster4",
            "https://www.example.com/app/download",
        ];
        let cases = [
            ("https://www.example.com/app/download?channel=poster42", Some(rules[3])),
            ("https://www.example.com/app/download?channel=web", Some(rules[2])),
            ("https://www.example.com/app/download?x=1", Some(rules[4])),
            ("https://www.example.com/app/download", Some(rules[4])),
            ("https://www.example.com/app/downloads", Some(rules[1])),
            ("https://www.example.com/app/download/ios", Some(rules[1])),
            ("https://www.example.com/about", Some(rules[0])),
            ("https://www.example.com", Some(rules[0])),
            ("https://example.com/app/", None),
            ("http://www.example.com/app/", None),
        ];
        for (url, want) in cases {
            assert_eq!(matched(&rules, url), want, "{url}");
        }
    }

    #[test]
    fn rejected_boundary_falls_back_to_a_shorter_prefix() {
        let rules = ["https://a.com/x/", "https://a.com/x/b"];
        assert_eq!(matched(&rules, "https://a.com/x/bc"), Some(rules[0]));
        assert_eq!(matched(&rules, "https://a.com/x/b/1"), Some(rules[0]));
        assert_eq!(matched(&rules, "https://a.com/x/b?1"), Some(rules[1]));
        assert_eq!(matched(&[], "https://a.com/"), None);
    }

    #[test]
    fn a_repeated_key_keeps_the_later_rule() {
        let pending = ["https://A.com/x", "https://a.com:443/x"]
            .iter()
            .enumerate()
            .map(|(i, p)| PendingRule {
                key: normalize_absolute(p).unwrap().into(),
                original: (*p).into(),
                query: "".into(),
                profile: i as u32,
            })
            .collect();
        let index = RuleIndex::build(pending);
        assert_eq!(index.len(), 1);
        assert_eq!(index.longest_match("https://a.com/x").unwrap().profile, 1);
    }

    /// The index must agree with a linear scan over every rule on inputs
    /// nobody chose by hand.
    #[test]
    fn agrees_with_a_linear_scan() {
        let segments = ["", "a", "a/", "ab", "a/b", "a/b/", "a?x", "a?x=1", "a/b?x=", "b/"];
        let rules: Vec<String> = segments.iter().map(|s| format!("https://h.com/{s}")).collect();
        let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
        let idx = index(&refs);
        let keys: Vec<String> = refs.iter().map(|r| normalize_absolute(r).unwrap()).collect();
        let mut seed = 7u64;
        let alphabet = b"ab/?x=1c";
        for _ in 0..5_000 {
            let mut url = String::from("https://h.com/");
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (seed >> 60) as usize;
            for k in 0..len {
                url.push(alphabet[((seed >> (k * 3 % 60)) & 7) as usize] as char);
            }
            let key = normalize_absolute(&url).unwrap();
            let linear = keys
                .iter()
                .enumerate()
                .filter(|(_, k)| prefix_matches(k, &key))
                .max_by_key(|(_, k)| k.len())
                .map(|(i, _)| i as u32);
            assert_eq!(idx.longest_match(&key).map(|m| m.profile), linear, "{url}");
        }
    }
}
