//! How scan answers are cached by a CDN or Varnish in front: their
//! `Cache-Control` (what changes invalidate is in [`crate::model::keys`]).

use hyper::header::HeaderValue;

/// The cache headers of scan answers, rendered once.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// Answers of an entry: a short browser lifetime, a longer one for
    /// shared caches (purged on change), and stale serving.
    pub hit: HeaderValue,
    /// `404`s: briefly, so a scan storm on a lost poster hits the origin
    /// once per lifetime.
    pub miss: HeaderValue,
}

/// Lifetimes, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub max_age: u32,
    pub s_maxage: u32,
    pub stale_while_revalidate: u32,
    pub stale_if_error: u32,
    pub miss_max_age: u32,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            max_age: 60,
            s_maxage: 300,
            stale_while_revalidate: 30,
            stale_if_error: 86_400,
            miss_max_age: 10,
        }
    }
}

impl CachePolicy {
    pub fn new(l: Lifetimes) -> CachePolicy {
        let hit = format!(
            "public, max-age={}, s-maxage={}, stale-while-revalidate={}, stale-if-error={}",
            l.max_age, l.s_maxage, l.stale_while_revalidate, l.stale_if_error
        );
        let miss = format!("public, max-age={0}, s-maxage={0}", l.miss_max_age);
        CachePolicy {
            hit: super::respond::lasting(hit),
            miss: super::respond::lasting(miss),
        }
    }
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy::new(Lifetimes::default())
    }
}
