//! Which kind of client asked: what it can open decides the answer (see
//! ARCHITECTURE.md, "An answer for every client").
//!
//! A pure function from the `User-Agent` header to a [`ClientClass`]. An
//! Aho-Corasick searcher finds every marker in the header (no regex
//! engine, no allocation); the class follows from which markers were
//! seen, by the priority in [`classify`]. `deploy/varnish/qrlaunch.vcl`
//! mirrors these rules, and a test checks the two agree on every case of
//! the table below.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use std::sync::LazyLock;

/// What a client can do with a scan answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, enum_map::Enum)]
pub enum ClientClass {
    /// iPhone, iPad and iPod browsers: follow a `302` to the scheme.
    Ios,
    /// Android (and HarmonyOS) browsers: need a page with a tap target.
    Android,
    /// WeChat's own browser (`MicroMessenger`, not WeCom): long-press a QR code.
    Wechat,
    /// Other in-app browsers that block app schemes (WeCom, QQ, Weibo,
    /// Alipay, DingTalk, Douyin/TikTok, Facebook, Instagram).
    Inapp,
    /// Desktop browsers: show the QR code to scan with a phone.
    Desktop,
    /// curl, bots, link previews, an empty or missing User-Agent.
    Other,
}

impl ClientClass {
    pub const ALL: [ClientClass; 6] = [
        ClientClass::Ios,
        ClientClass::Android,
        ClientClass::Wechat,
        ClientClass::Inapp,
        ClientClass::Desktop,
        ClientClass::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientClass::Ios => "ios",
            ClientClass::Android => "android",
            ClientClass::Wechat => "wechat",
            ClientClass::Inapp => "inapp",
            ClientClass::Desktop => "desktop",
            ClientClass::Other => "other",
        }
    }

    /// The class named by a trusted proxy's header (`X-QR-Client: android`).
    pub fn parse(name: &[u8]) -> Option<ClientClass> {
        ClientClass::ALL
            .into_iter()
            .find(|c| c.as_str().as_bytes().eq_ignore_ascii_case(name.trim_ascii()))
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `qrlaunch-class` header value of an answer made for this class.
    pub fn header_value(self) -> hyper::header::HeaderValue {
        hyper::header::HeaderValue::from_static(self.as_str())
    }
}

/// The class column of a scan count: the client class of a scan, a scan
/// resolved by the mini program's landing page after WeChat's own scanner
/// read the code (`wechat-scan`), or a 404 (which has no class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CountClass {
    Client(ClientClass),
    WechatScan,
    NotFound,
}

impl CountClass {
    /// The classes an entry's counters are kept for, in cell order: one
    /// per client class, then `wechat-scan`.
    pub const CELLS: [CountClass; ClientClass::ALL.len() + 1] = [
        CountClass::Client(ClientClass::Ios),
        CountClass::Client(ClientClass::Android),
        CountClass::Client(ClientClass::Wechat),
        CountClass::Client(ClientClass::Inapp),
        CountClass::Client(ClientClass::Desktop),
        CountClass::Client(ClientClass::Other),
        CountClass::WechatScan,
    ];

    /// The same classes in the order people read them (tables, CSV): the
    /// two ways WeChat reads a code side by side.
    pub const COLUMNS: [CountClass; ClientClass::ALL.len() + 1] = [
        CountClass::Client(ClientClass::Ios),
        CountClass::Client(ClientClass::Android),
        CountClass::Client(ClientClass::Wechat),
        CountClass::WechatScan,
        CountClass::Client(ClientClass::Inapp),
        CountClass::Client(ClientClass::Desktop),
        CountClass::Client(ClientClass::Other),
    ];

    /// The cell of an entry's counters this class is counted in (`None`:
    /// a 404, counted per host).
    pub fn cell(self) -> Option<usize> {
        match self {
            CountClass::Client(class) => Some(class.index()),
            CountClass::WechatScan => Some(ClientClass::ALL.len()),
            CountClass::NotFound => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CountClass::Client(class) => class.as_str(),
            CountClass::WechatScan => "wechat-scan",
            CountClass::NotFound => "not_found",
        }
    }

    /// The class a stored count names; `None` for a name no build knows
    /// (never taken for another class).
    pub fn parse(name: &str) -> Option<CountClass> {
        match name {
            "not_found" => return Some(CountClass::NotFound),
            "wechat-scan" => return Some(CountClass::WechatScan),
            _ => {}
        }
        ClientClass::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .map(CountClass::Client)
    }
}

/// The markers looked for, each with what it says about the client.
const MARKERS: &[(&str, Marker)] = &[
    // WeCom's browser also says MicroMessenger; it cannot long-press QR codes
    // into mini programs, so it counts as an in-app browser.
    ("wxwork", Marker::WeCom),
    ("MicroMessenger", Marker::Wechat),
    (" QQ/", Marker::InApp),
    ("Weibo", Marker::InApp),
    ("AlipayClient", Marker::InApp),
    ("DingTalk", Marker::InApp),
    ("aweme", Marker::InApp),
    ("BytedanceWebview", Marker::InApp),
    ("musical_ly", Marker::InApp),
    ("TikTok", Marker::InApp),
    ("FBAN", Marker::InApp),
    ("FBAV", Marker::InApp),
    ("Instagram", Marker::InApp),
    ("bot", Marker::Bot),
    ("Bot", Marker::Bot),
    ("spider", Marker::Bot),
    ("Spider", Marker::Bot),
    ("crawler", Marker::Bot),
    ("facebookexternalhit", Marker::Bot),
    ("WhatsApp/", Marker::Bot),
    ("curl/", Marker::Bot),
    ("Wget/", Marker::Bot),
    ("python-requests", Marker::Bot),
    ("Go-http-client", Marker::Bot),
    ("HeadlessChrome", Marker::Bot),
    ("iPhone", Marker::Ios),
    ("iPad", Marker::Ios),
    ("iPod", Marker::Ios),
    ("Android", Marker::Android),
    ("HarmonyOS", Marker::Android),
    ("OpenHarmony", Marker::Android),
    ("Windows NT", Marker::Desktop),
    ("Macintosh", Marker::Desktop),
    ("X11", Marker::Desktop),
    ("CrOS", Marker::Desktop),
    ("Mobile", Marker::Mobile),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    WeCom,
    Wechat,
    InApp,
    Bot,
    Ios,
    Android,
    Desktop,
    Mobile,
}

impl Marker {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Leftmost-first, so the search can use its SIMD prefilter (an
/// overlapping search walks the automaton byte by byte: 2-5x slower on
/// real User-Agents, measured with `cargo bench --bench lookup -- client_class`).
static AUTOMATON: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(MARKERS.iter().map(|(text, _)| text))
        .expect("the markers build an automaton")
});

/// The class of a client by its `User-Agent` header (`None`: no header).
pub fn classify(user_agent: Option<&[u8]>) -> ClientClass {
    let Some(ua) = user_agent.filter(|ua| !ua.trim_ascii().is_empty()) else {
        return ClientClass::Other;
    };
    let seen = markers_seen(ua);
    let has = |m: Marker| seen & m.bit() != 0;
    if has(Marker::WeCom) {
        return ClientClass::Inapp;
    }
    if has(Marker::Wechat) {
        return ClientClass::Wechat;
    }
    if has(Marker::InApp) {
        return ClientClass::Inapp;
    }
    if has(Marker::Bot) {
        return ClientClass::Other;
    }
    if has(Marker::Ios) {
        return ClientClass::Ios;
    }
    if has(Marker::Android) {
        return ClientClass::Android;
    }
    if has(Marker::Desktop) {
        return ClientClass::Desktop;
    }
    if has(Marker::Mobile) {
        // A phone we cannot name: a page with a tap target is the safe answer.
        return ClientClass::Android;
    }
    ClientClass::Other
}

/// The bits of every marker in `ua`, as an overlapping search would find
/// them: each search resumes one byte after the last match's start, and no
/// marker is a prefix of another (a test checks), so none is skipped.
fn markers_seen(ua: &[u8]) -> u8 {
    let mut seen = 0u8;
    let mut from = 0;
    while let Some(found) = AUTOMATON.find(Input::new(ua).span(from..ua.len())) {
        seen |= MARKERS[found.pattern().as_usize()].1.bit();
        from = found.start() + 1;
    }
    seen
}

/// [`classify`], remembered per thread for the User-Agents seen lately.
///
/// Scans repeat a limited set of User-Agents (phone models, app versions),
/// and a hash and a compare cost a fraction of a search over the header:
/// ~2,300 instructions a scan for the search against ~300 for a hit here
/// (counted with callgrind on the running server). A thread keeps at most
/// [`MEMO_SLOTS`] User-Agents of at most [`MEMO_MAX_LEN`] bytes; a longer
/// one is classified directly, and a slot taken by another User-Agent is
/// simply overwritten, so hostile clients only make it a search again.
pub fn classify_remembered(user_agent: Option<&[u8]>) -> ClientClass {
    match user_agent {
        Some(ua) if ua.len() <= MEMO_MAX_LEN => MEMO.with(|memo| memo.borrow_mut().classify(ua)),
        _ => classify(user_agent),
    }
}

/// Slots of the per-thread memo (a power of two).
pub const MEMO_SLOTS: usize = 256;
/// Longest User-Agent the memo keeps.
pub const MEMO_MAX_LEN: usize = 512;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::new());
}

/// A direct-mapped table from User-Agent to class.
struct Memo {
    hasher: ahash::RandomState,
    slots: Vec<MemoSlot>,
}

struct MemoSlot {
    hash: u64,
    class: ClientClass,
    ua: Vec<u8>,
}

impl Memo {
    fn new() -> Memo {
        Memo {
            hasher: ahash::RandomState::new(),
            slots: (0..MEMO_SLOTS)
                .map(|_| MemoSlot {
                    hash: 0,
                    class: ClientClass::Other,
                    ua: Vec::new(),
                })
                .collect(),
        }
    }

    fn classify(&mut self, ua: &[u8]) -> ClientClass {
        let hash = self.hasher.hash_one(ua);
        let slot = &mut self.slots[hash as usize & (MEMO_SLOTS - 1)];
        if slot.hash == hash && slot.ua == ua && !slot.ua.is_empty() {
            return slot.class;
        }
        let class = classify(Some(ua));
        slot.hash = hash;
        slot.class = class;
        slot.ua.clear();
        slot.ua.extend_from_slice(ua);
        class
    }
}

/// Real User-Agent strings and their class, one a line: the classifier's
/// test table, also used by the integration and Varnish tests. Add a case
/// with one line.
pub const EXAMPLES: &[(&str, ClientClass)] = &[
    // iOS browsers
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", ClientClass::Ios),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", ClientClass::Ios),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", ClientClass::Ios),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", ClientClass::Ios),
    ("Mozilla/5.0 (iPod touch; CPU iPhone OS 12_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Mobile/15E148 Safari/604.1", ClientClass::Ios),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MQQBrowser/13.9.0 Mobile Safari/604.1", ClientClass::Ios),
    // Android browsers
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Linux; Android 12; HarmonyOS; NOH-AN00; HMSCore 6.13.0.302) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/99.0.4844.88 HuaweiBrowser/14.0.6.300 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Phone; OpenHarmony 4.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36 ArkWeb/4.1.6.1 Mobile HuaweiBrowser/5.0.4.300", ClientClass::Android),
    ("Mozilla/5.0 (Linux; U; Android 13; zh-cn; 2211133C Build/TKQ1.220905.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.118 Mobile Safari/537.36 XiaoMi/MiuiBrowser/18.1.170905", ClientClass::Android),
    ("Mozilla/5.0 (Linux; U; Android 12; zh-CN; V2183A Build/SP1A.210812.003) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 UCBrowser/15.5.8.1320 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Linux; U; Android 13; zh-cn; PHB110 Build/TP1A.220905.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.8 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Linux; Android 12; ELS-AN00 Build/HUAWEIELS-AN00; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/103.0.5060.129 Mobile Safari/537.36 baiduboxapp/13.41.5.10", ClientClass::Android),
    ("Mozilla/5.0 (Linux; U; Android 13; zh-CN; 22081212C Build/TKQ1.220829.002) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 Quark/6.11.5.560 Mobile Safari/537.36", ClientClass::Android),
    ("Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", ClientClass::Android),
    ("Mozilla/5.0 (Mobile; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5", ClientClass::Android),
    // WeChat's own browser
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN", ClientClass::Wechat),
    ("Mozilla/5.0 (Linux; Android 13; V2307A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160083 MMWEBSDK/20240301 MMWEBID/6178 MicroMessenger/8.0.48.2580(0x28003036) WeChat/arm64 Weixin NetType/5G Language/zh_CN ABI/arm64", ClientClass::Wechat),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue", ClientClass::Wechat),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) XWEB/1191 Flue", ClientClass::Wechat),
    // Other in-app browsers
    ("Mozilla/5.0 (Linux; Android 13; 22081212C Build/TKQ1.220829.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107.0.5304.141 Mobile Safari/537.36 wxwork/4.1.22 MicroMessenger/7.0.1 NetType/WIFI Language/zh ColorScheme/Light", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.23 MicroMessenger/7.0.1 Language/zh ColorScheme/Dark", ClientClass::Inapp),
    ("Mozilla/5.0 (Linux; Android 12; M2012K11AC Build/SKQ1.211006.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/89.0.4389.72 MQQBrowser/6.2 TBS/046291 Mobile Safari/537.36 V1_AND_SQ_8.9.38_4282_YYB_D QQ/8.9.38.10545 NetType/WIFI WebP/0.3.0 AppId/537153294", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 QQ/8.9.80.631 V1_IPH_SQ_8.9.80_1_APP_A Pixel/1170 MiniAppEnable SimpleUISwitch/0 StudyMode/0 CurrentMode/0 CurrentFontScale/1.000000 QQTheme/1000 Core/WKWebView Device/Apple(iPhone 13) NetType/WIFI QBWebViewType/1 WKType/1", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Weibo (iPhone14,5__weibo__13.11.1__iphone__os17.1)", ClientClass::Inapp),
    ("Mozilla/5.0 (Linux; U; Android 13; zh-CN; V2227A Build/TP1A.220624.014) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/100.0.4896.58 Mobile Safari/537.36 UCBrowser/3.0.0.0 AlipayClient/10.5.26.8100 Language/zh-Hans", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.5.10) com.laiwang.DingTalk/32286112 Channel/201200 language/zh-Hans-CN UT4Aplus/0.0.6 WK", ClientClass::Inapp),
    ("Mozilla/5.0 (Linux; Android 13; V2244A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/75.0.3770.156 Mobile Safari/537.36 aweme_290300 JsSdk/1.0 NetType/WIFI Channel/vivo_1128_64 app_version/29.3.0 ByteLocale/zh-CN Region/CN AppSkin/white AppTheme/light BytedanceWebview/d8a21c6", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 musical_ly_34.5.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/en Region/US", ClientClass::Inapp),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/466.0.0.47.104;FBBV/604713935;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]", ClientClass::Inapp),
    ("Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 Instagram 337.0.0.35.89 Android (34/14; 480dpi; 1080x2340; samsung; SM-S911B; dm1q; qcom; en_US; 615135000)", ClientClass::Inapp),
    // Desktop browsers
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ClientClass::Desktop),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", ClientClass::Desktop),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", ClientClass::Desktop),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", ClientClass::Desktop),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ClientClass::Desktop),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ClientClass::Desktop),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", ClientClass::Desktop),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", ClientClass::Desktop),
    // Tools, bots and link previews
    ("curl/8.5.0", ClientClass::Other),
    ("Wget/1.21.4", ClientClass::Other),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ClientClass::Other),
    ("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ClientClass::Other),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", ClientClass::Other),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", ClientClass::Other),
    ("WhatsApp/2.23.20.0", ClientClass::Other),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", ClientClass::Other),
    ("python-requests/2.31.0", ClientClass::Other),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36", ClientClass::Other),
    ("", ClientClass::Other),
    ("   ", ClientClass::Other),
    ("something/1.0", ClientClass::Other),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ClientClass::*;

    #[test]
    fn every_user_agent_of_the_table_gets_its_class() {
        assert!(EXAMPLES.len() >= 40);
        for (ua, want) in EXAMPLES {
            assert_eq!(classify(Some(ua.as_bytes())), *want, "{ua}");
        }
        assert_eq!(classify(None), Other);
    }

    #[test]
    fn class_names_round_trip() {
        for class in ClientClass::ALL {
            assert_eq!(ClientClass::parse(class.as_str().as_bytes()), Some(class));
            assert_eq!(ClientClass::ALL[class.index()], class);
        }
        assert_eq!(ClientClass::parse(b" Android "), Some(Android));
        assert_eq!(ClientClass::parse(b"phone"), None);
    }

    /// The markers seen the slow, obvious way: every occurrence.
    fn seen_by_reference(ua: &[u8]) -> u8 {
        MARKERS
            .iter()
            .filter(|(m, _)| ua.windows(m.len()).any(|w| w == m.as_bytes()))
            .fold(0, |seen, (_, marker)| seen | marker.bit())
    }

    #[test]
    fn the_memo_answers_as_the_classifier_does() {
        // Twice through the table (misses, then hits), then more distinct
        // User-Agents than the memo has slots, then the table again.
        for round in 0..2 {
            for (ua, want) in EXAMPLES {
                assert_eq!(classify_remembered(Some(ua.as_bytes())), *want, "round {round}: {ua}");
            }
        }
        for i in 0..MEMO_SLOTS * 2 {
            let ua = format!("Mozilla/5.0 (Linux; Android {i}) Mobile");
            assert_eq!(classify_remembered(Some(ua.as_bytes())), Android);
        }
        for (ua, want) in EXAMPLES {
            assert_eq!(classify_remembered(Some(ua.as_bytes())), *want, "{ua}");
        }
        assert_eq!(classify_remembered(None), Other);
        assert_eq!(classify_remembered(Some(b"")), Other);
        let long = format!("{} iPhone", "x".repeat(MEMO_MAX_LEN));
        assert_eq!(classify_remembered(Some(long.as_bytes())), Ios);
    }

    #[test]
    fn no_marker_holds_another() {
        for (a, _) in MARKERS {
            for (b, _) in MARKERS {
                assert!(a == b || !a.contains(b), "{a} holds {b}: the search could skip it");
            }
        }
    }

    #[test]
    fn the_search_finds_every_marker_even_where_markers_overlap() {
        let mut cases: Vec<Vec<u8>> = EXAMPLES.iter().map(|(ua, _)| ua.as_bytes().to_vec()).collect();
        // Markers that overlap one another in the text.
        for text in [
            "Weibot",
            "HarmonyOSpider",
            "CrOSpider",
            "Windows NTikTok",
            "BytedanceWebviewxwork",
        ] {
            cases.push(text.as_bytes().to_vec());
        }
        // Every pair of markers glued with 0-2 shared bytes, in both orders.
        for (a, _) in MARKERS {
            for (b, _) in MARKERS {
                for cut in 0..3usize.min(a.len()) {
                    let mut text = a.as_bytes()[..a.len() - cut].to_vec();
                    text.extend_from_slice(b.as_bytes());
                    cases.push(text);
                }
            }
        }
        for ua in &cases {
            assert_eq!(
                markers_seen(ua),
                seen_by_reference(ua),
                "{}",
                String::from_utf8_lossy(ua)
            );
        }
    }
}
