//! The QR codes drawn on launch pages, kept by scanned URL.
//!
//! WeChat's browser and desktops get a page with the scanned URL as a QR
//! code, and encoding one (Reed-Solomon plus trying eight masks) costs far
//! more than the rest of the answer. The image depends on the URL alone, so
//! it never goes stale; the cache only bounds memory (by the SVGs' bytes,
//! evicting what is scanned least), and a hit costs a hash lookup and an
//! `Arc` clone.

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::Arc;

/// Bytes of SVG text kept at most (an SVG is ~3-12 KB).
const CAPACITY_BYTES: u64 = 8 << 20;

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
}

impl std::fmt::Debug for QrCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrCache").field("entries", &self.svgs.len()).finish()
    }
}

impl Default for QrCache {
    fn default() -> Self {
        QrCache::with_capacity(CAPACITY_BYTES)
    }
}

impl QrCache {
    /// The longest URL drawn: a rule's page shows the scanned URL, query
    /// and all, and an attacker picks the query. At 512 bytes a QR code is
    /// version 17-20 and costs a fixed, bounded time to draw; a longer URL
    /// gets a page without a QR code that says why.
    pub const MAX_URL: usize = 512;

    /// A cache of at most `bytes` of URLs and SVG text.
    pub fn with_capacity(bytes: u64) -> QrCache {
        QrCache {
            svgs: Cache::with_weighter(1024, bytes, SvgBytes),
        }
    }

    /// The page's QR code for `url`; `None` if the URL is longer than
    /// [`QrCache::MAX_URL`].
    pub fn svg(&self, url: &str) -> Option<Arc<str>> {
        if url.len() > QrCache::MAX_URL {
            return None;
        }
        if let Some(svg) = self.svgs.get(url) {
            return Some(svg);
        }
        let svg: Arc<str> = crate::qr::svg(url, crate::qr::QrStyle::default()).ok()?.into();
        self.svgs.insert(url.into(), svg.clone());
        Some(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_code_is_the_code_of_its_url() {
        let cache = QrCache::default();
        let first = cache.svg("https://go.example.com/a").unwrap();
        let again = cache.svg("https://go.example.com/a").unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second page reuses the first's image");
        let other = cache.svg("https://go.example.com/b").unwrap();
        assert_ne!(first, other);
        let fresh = crate::qr::svg("https://go.example.com/b", crate::qr::QrStyle::default()).unwrap();
        assert_eq!(&*other, fresh.as_str());
    }

    #[test]
    fn urls_past_the_cap_get_no_code() {
        let cache = QrCache::default();
        let at_cap = format!("https://go.example.com/?{}", "x".repeat(QrCache::MAX_URL - 24));
        assert_eq!(at_cap.len(), QrCache::MAX_URL);
        assert!(cache.svg(&at_cap).is_some());
        assert!(cache.svg(&format!("{at_cap}y")).is_none());
    }

    #[test]
    fn memory_stays_within_the_bound() {
        let bound = 64 * 1024;
        let cache = QrCache::with_capacity(bound);
        for i in 0..60 {
            cache
                .svg(&format!("https://go.example.com/{i}-{}", "x".repeat(100)))
                .unwrap();
        }
        assert!(cache.svgs.weight() <= bound, "{}", cache.svgs.weight());
        assert!(cache.svgs.len() < 60, "some were evicted");
    }
}
