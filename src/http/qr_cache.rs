//! The QR codes drawn on launch pages, kept by scanned URL.
//!
//! WeChat's browser and desktops get a page with the scanned URL as a QR
//! code, and encoding one (Reed-Solomon plus trying eight masks) costs far
//! more than the rest of the answer. The image depends on the URL alone, so
//! it never goes stale; the cache only bounds memory (by the SVGs' bytes,
//! evicting what is scanned least), and a hit costs a hash lookup and an
//! `Arc` clone.
//!
//! What one request can cost is bounded twice: a URL longer than
//! [`QrCache::MAX_URL`] is not drawn, and new drawings are limited to a
//! budget per second for the whole node (`--page-qr-draws`), so a flood of
//! URLs never seen before (a rule's page draws the scanned URL, query and
//! all) cannot take the core from everyone else's scans. Past the budget a
//! page goes without its QR code, says so, and is not cached.

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::Arc;

/// Bytes of SVG text kept at most (an SVG is ~3-12 KB).
pub const CAPACITY_BYTES: u64 = 8 << 20;

#[derive(Clone)]
struct SvgBytes;

impl Weighter<Box<str>, Arc<str>> for SvgBytes {
    fn weight(&self, key: &Box<str>, svg: &Arc<str>) -> u64 {
        (key.len() + svg.len()) as u64
    }
}

/// Launch-page QR codes by scanned URL; shared by the scan threads.
pub struct QrCache {
    svgs: Cache<Box<str>, Arc<str>, SvgBytes>,
    budget: DrawBudget,
}

/// What a page gets for its QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrImage {
    Svg(Arc<str>),
    /// The URL is longer than [`QrCache::MAX_URL`].
    TooLong,
    /// The node drew its budget of new codes this second.
    Busy,
}

/// New drawings allowed per second: a token bucket refilled continuously,
/// holding at most one second's worth.
struct DrawBudget {
    per_second: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl DrawBudget {
    fn new(per_second: u32) -> DrawBudget {
        let per_second = f64::from(per_second);
        DrawBudget {
            per_second,
            state: std::sync::Mutex::new((per_second, std::time::Instant::now())),
        }
    }

    /// Takes one drawing, if the budget has one. Only asked before a
    /// drawing (hundreds of microseconds), so the lock is never the cost.
    fn take(&self) -> bool {
        let now = std::time::Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = *state;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * self.per_second).min(self.per_second);
        let granted = tokens >= 1.0;
        *state = (if granted { tokens - 1.0 } else { tokens }, now);
        granted
    }
}

impl std::fmt::Debug for QrCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrCache").field("entries", &self.svgs.len()).finish()
    }
}

impl Default for QrCache {
    fn default() -> Self {
        QrCache::new(CAPACITY_BYTES, QrCache::DRAWS_PER_SECOND)
    }
}

impl QrCache {
    /// The longest URL drawn: a rule's page shows the scanned URL, query
    /// and all, and an attacker picks the query. At 512 bytes a QR code is
    /// version 17-20 and costs a fixed, bounded time to draw; a longer URL
    /// gets a page without a QR code that says why.
    pub const MAX_URL: usize = 512;

    /// New drawings per second by default: at about half a millisecond
    /// each, a tenth of a core at most.
    pub const DRAWS_PER_SECOND: u32 = 200;

    /// A cache of at most `bytes` of URLs and SVG text, drawing at most
    /// `draws_per_second` new codes a second.
    pub fn new(bytes: u64, draws_per_second: u32) -> QrCache {
        QrCache {
            svgs: Cache::with_weighter(1024, bytes, SvgBytes),
            budget: DrawBudget::new(draws_per_second),
        }
    }

    /// The page's QR code for `url`.
    pub fn svg(&self, url: &str) -> QrImage {
        if url.len() > QrCache::MAX_URL {
            return QrImage::TooLong;
        }
        if let Some(svg) = self.svgs.get(url) {
            return QrImage::Svg(svg);
        }
        if !self.budget.take() {
            return QrImage::Busy;
        }
        match crate::qr::svg(url, crate::qr::QrStyle::default()) {
            Ok(svg) => {
                let svg: Arc<str> = svg.into();
                self.svgs.insert(url.into(), svg.clone());
                QrImage::Svg(svg)
            }
            // Only a URL too long for any QR version fails.
            Err(_) => QrImage::TooLong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_code_is_the_code_of_its_url() {
        let cache = QrCache::default();
        let svg = |url: &str| match cache.svg(url) {
            QrImage::Svg(svg) => svg,
            other => panic!("{url}: {other:?}"),
        };
        let first = svg("https://go.example.com/a");
        let again = svg("https://go.example.com/a");
        assert!(Arc::ptr_eq(&first, &again), "the second page reuses the first's image");
        let other = svg("https://go.example.com/b");
        assert_ne!(first, other);
        let fresh = crate::qr::svg("https://go.example.com/b", crate::qr::QrStyle::default()).unwrap();
        assert_eq!(&*other, fresh.as_str());
    }

    #[test]
    fn urls_past_the_cap_get_no_code() {
        let cache = QrCache::default();
        let at_cap = format!("https://go.example.com/?{}", "x".repeat(QrCache::MAX_URL - 24));
        assert_eq!(at_cap.len(), QrCache::MAX_URL);
        assert!(matches!(cache.svg(&at_cap), QrImage::Svg(_)));
        assert_eq!(cache.svg(&format!("{at_cap}y")), QrImage::TooLong);
    }

    #[test]
    fn new_drawings_stop_at_the_budget_and_cached_ones_do_not() {
        let cache = QrCache::new(CAPACITY_BYTES, 3);
        let drawn: Vec<QrImage> = (0..5)
            .map(|i| cache.svg(&format!("https://a.example.com/{i}")))
            .collect();
        assert!(drawn[..3].iter().all(|d| matches!(d, QrImage::Svg(_))), "{drawn:?}");
        assert_eq!(&drawn[3..], &[QrImage::Busy, QrImage::Busy]);
        assert!(
            matches!(cache.svg("https://a.example.com/0"), QrImage::Svg(_)),
            "cached"
        );
    }

    #[test]
    fn memory_stays_within_the_bound() {
        let bound = 64 * 1024;
        let cache = QrCache::new(bound, 1000);
        for i in 0..60 {
            let drawn = cache.svg(&format!("https://go.example.com/{i}-{}", "x".repeat(100)));
            assert!(matches!(drawn, QrImage::Svg(_)));
        }
        assert!(cache.svgs.weight() <= bound, "{}", cache.svgs.weight());
        assert!(cache.svgs.len() < 60, "some were evicted");
    }
}
