use super::{AppId, EnvVersion, FallbackUrl, PagePath, Query};

/// Where a scan lands: a page of a mini program, with its query, the build
/// to open, and a web page for people who cannot open WeChat.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPoint {
    pub appid: AppId,
    pub path: PagePath,
    pub query: Query,
    pub env_version: EnvVersion,
    pub fallback_url: Option<FallbackUrl>,
}
