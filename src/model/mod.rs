//! The core rules: what an entry is, how URLs are compared, what a URL
//! resolves to and what a change makes stale. Pure data and functions: no
//! storage, no network, no threads, no `crate::replication` or
//! `crate::edge` (a test enforces it). Every layer above uses these, so a
//! rule is changed here once and every edge sees it.
//!
//! * [`access`]: API key roles and scopes, and which entries a key covers;
//! * [`domain`]: validated types (`AppId`, `Code`, `PagePath`, `Entry`, …);
//! * [`url_key`]: the normalized form scanned URLs and rule prefixes are
//!   compared in, and WeChat's matching predicate;
//! * [`percent`]: strict percent-decoding and URL-component encoding;
//! * [`client_class`]: which kind of client asked, from its User-Agent;
//! * [`table`]: the immutable in-memory table, its overlay and the
//!   lock-free [`table::LiveTable`];
//! * [`decide`]: the one decision for a URL (file, code, rule,
//!   pass-through, not found), and where codes answer ([`decide::CodeHosts`]);
//! * [`change`]: positions and changes of the change log;
//! * [`keys`]: surrogate keys of answers and of changes;
//! * [`scheme_url`]: rendering the `weixin://` URL;
//! * [`qr`]: QR images (SVG, PNG) of URLs;
//! * [`table_file`]: the NDJSON table file, one reader for every use.

pub mod access;
pub mod change;
pub mod client_class;
pub mod decide;
pub mod domain;
pub mod keys;
pub mod percent;
pub mod qr;
pub mod scheme_url;
pub mod table;
pub mod table_file;
pub mod url_key;
