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
//! [`QrCache::MAX_URL`] is not drawn (at the cap a drawing takes about 5 ms
//! on the VM of the README's numbers, 0.4 ms for a code's URL), and the time
//! spent drawing new codes is limited to a share of one core for the whole
//! node (`--page-qr-cpu`, 10%), so a flood of URLs never seen before (a
//! rule's page draws the scanned URL, query and all) cannot take the core
//! from everyone else's scans. Past the budget a page goes without its QR
//! code, says so, and is not cached.

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

/// Drawing time allowed per second: a token bucket of microseconds,
/// refilled continuously and holding at most one second's worth. A drawing
/// may start while the bucket is positive and is paid for afterwards with
/// the time it took, so the share holds whatever the URL's length.
struct DrawBudget {
    micros_per_second: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl DrawBudget {
    fn new(percent_of_a_core: u32) -> DrawBudget {
        let micros_per_second = f64::from(percent_of_a_core.min(100)) * 10_000.0;
        DrawBudget {
            micros_per_second,
            state: std::sync::Mutex::new((micros_per_second, std::time::Instant::now())),
        }
    }

    /// Whether a drawing may start now. Asked only before a drawing
    /// (hundreds of microseconds), so the lock is never the cost.
    fn allows(&self) -> bool {
        self.settle(0.0) > 0.0
    }

    /// Pays for a drawing that took `took`.
    fn spend(&self, took: std::time::Duration) {
        self.settle(took.as_secs_f64() * 1e6);
    }

    /// Refills the bucket, takes `cost` from it and returns what is left.
    fn settle(&self, cost: f64) -> f64 {
        let now = std::time::Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = *state;
        let refilled =
            (tokens + now.duration_since(at).as_secs_f64() * self.micros_per_second).min(self.micros_per_second);
        let left = refilled - cost;
        *state = (left, now);
        left
    }
}

impl std::fmt::Debug for QrCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrCache").field("entries", &self.svgs.len()).finish()
    }
}

impl Default for QrCache {
    fn default() -> Self {
        QrCache::new(CAPACITY_BYTES, QrCache::CPU_PERCENT)
    }
}

impl QrCache {
    /// The longest URL drawn: a rule's page shows the scanned URL, query
    /// and all, and an attacker picks the query. At 512 bytes a QR code is
    /// version 17-20 and costs a fixed, bounded time to draw; a longer URL
    /// gets a page without a QR code that says why.
    pub const MAX_URL: usize = 512;

    /// The share of one core that drawing new codes may take, in percent.
    pub const CPU_PERCENT: u32 = 10;

    /// A cache of at most `bytes` of URLs and SVG text, spending at most
    /// `cpu_percent` of one core's time drawing new codes.
    pub fn new(bytes: u64, cpu_percent: u32) -> QrCache {
        QrCache {
            svgs: Cache::with_weighter(1024, bytes, SvgBytes),
            budget: DrawBudget::new(cpu_percent),
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
        if !self.budget.allows() {
            return QrImage::Busy;
        }
        let started = std::time::Instant::now();
        let drawn = crate::model::qr::svg(url, crate::model::qr::QrStyle::default());
        self.budget.spend(started.elapsed());
        match drawn {
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
        let fresh = crate::model::qr::svg("https://go.example.com/b", crate::model::qr::QrStyle::default()).unwrap();
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
        // 1% of a core: 10 ms of drawing a second, a few codes at most.
        let cache = QrCache::new(CAPACITY_BYTES, 1);
        let url = |i: usize| format!("https://a.example.com/{i}?{}", "x".repeat(200));
        let drawn: Vec<QrImage> = (0..500).map(|i| cache.svg(&url(i))).collect();
        let svgs = drawn.iter().filter(|d| matches!(d, QrImage::Svg(_))).count();
        assert!((1..100).contains(&svgs), "{svgs} drawn within 10 ms of budget");
        assert_eq!(drawn.last(), Some(&QrImage::Busy));
        assert!(matches!(cache.svg(&url(0)), QrImage::Svg(_)), "cached ones are served");
    }

    #[test]
    fn memory_stays_within_the_bound() {
        let bound = 64 * 1024;
        let cache = QrCache::new(bound, 100);
        for i in 0..60 {
            let drawn = cache.svg(&format!("https://go.example.com/{i}-{}", "x".repeat(100)));
            assert!(matches!(drawn, QrImage::Svg(_)));
        }
        assert!(cache.svgs.weight() <= bound, "{}", cache.svgs.weight());
        assert!(cache.svgs.len() < 60, "some were evicted");
    }
}
