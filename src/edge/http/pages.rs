//! The HTML a person holding a phone sees: launch pages for clients that
//! cannot follow a redirect into WeChat, and the 404/410/400 pages. One
//! small self-contained document (`templates/page.html`: inline CSS, no
//! external resource), in Simplified Chinese or English by
//! `Accept-Language`, escaped by askama's compiled templates.

use crate::model::client_class::ClientClass;
use crate::model::domain::Availability;
use askama::Template;

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    fn texts(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }
}

/// Chinese when the most preferred language of `Accept-Language` is
/// `zh…`, English otherwise (and without the header). No allocation.
pub fn language(accept_language: Option<&[u8]>) -> Lang {
    let Some(header) = accept_language else { return Lang::En };
    let mut best: Option<(f32, bool)> = None;
    for item in header.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let tag = parts.next().unwrap_or_default().trim_ascii();
        if tag.is_empty() || tag == b"*" {
            continue;
        }
        let mut q = 1.0f32;
        for param in parts {
            let param = param.trim_ascii();
            if let Some(value) = param.strip_prefix(b"q=").or_else(|| param.strip_prefix(b"Q=")) {
                q = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<f32>().ok())
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        let zh = tag.len() >= 2 && tag[..2].eq_ignore_ascii_case(b"zh");
        if q > 0.0 && best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, zh));
        }
    }
    match best {
        Some((_, true)) => Lang::Zh,
        _ => Lang::En,
    }
}

/// Every text of the pages in one language.
struct Texts {
    html_lang: &'static str,
    android_title: &'static str,
    android_message: &'static str,
    open_button: &'static str,
    wechat_title: &'static str,
    wechat_message: &'static str,
    inapp_title: &'static str,
    inapp_message: &'static str,
    desktop_title: &'static str,
    desktop_message: &'static str,
    device_link: &'static str,
    fallback: &'static str,
    qr_too_long: &'static str,
    qr_busy: &'static str,
    not_found_title: &'static str,
    not_found_message: &'static str,
    gone_title: &'static str,
    gone_disabled: &'static str,
    gone_not_yet: &'static str,
    gone_expired: &'static str,
    bad_request_title: &'static str,
}

static ZH: Texts = Texts {
    html_lang: "zh-CN",
    android_title: "打开微信小程序",
    android_message: "正在打开微信……如果没有自动打开，请点击下方按钮。",
    open_button: "在微信中打开",
    wechat_title: "长按识别二维码",
    wechat_message: "请长按下方二维码，选择“识别图中的二维码”，即可打开小程序。",
    inapp_title: "请在浏览器中打开",
    inapp_message: "当前应用无法直接打开微信。请点击右上角的“···”，选择“在浏览器中打开”；也可以用微信扫描下方二维码。",
    desktop_title: "请用手机微信扫码",
    desktop_message: "请用手机微信扫描下方二维码，打开小程序。",
    device_link: "在本设备上打开微信",
    fallback: "没有微信？在网页中继续",
    qr_too_long: "这个链接太长，无法显示为二维码。请在手机浏览器中打开它。",
    qr_busy: "二维码暂时无法显示，请稍后刷新本页。",
    not_found_title: "未找到",
    not_found_message: "这个二维码在这里无法识别。",
    gone_title: "二维码已失效",
    gone_disabled: "这个二维码已停用。",
    gone_not_yet: "这个二维码尚未生效，请稍后再试。",
    gone_expired: "这个二维码已过期。",
    bad_request_title: "请求无效",
};

static EN: Texts = Texts {
    html_lang: "en",
    android_title: "Open in WeChat",
    android_message: "Opening WeChat… If nothing happens, tap the button below.",
    open_button: "Open in WeChat",
    wechat_title: "Press and hold the QR code",
    wechat_message: "Press and hold the QR code below, then choose “Scan QR Code in Image” to open the mini program.",
    inapp_title: "Open this page in your browser",
    inapp_message: "This app cannot open WeChat. Tap ··· in the top corner and choose “Open in browser”, or scan the QR code below with WeChat.",
    desktop_title: "Scan with WeChat on your phone",
    desktop_message: "Scan the QR code below with WeChat on your phone to open the mini program.",
    device_link: "Open WeChat on this device",
    fallback: "No WeChat? Continue on the web",
    qr_too_long: "This link is too long to show as a QR code. Open it in a browser on your phone.",
    qr_busy: "The QR code cannot be shown right now. Reload this page in a moment.",
    not_found_title: "Not found",
    not_found_message: "This QR code is not known here.",
    gone_title: "No longer available",
    gone_disabled: "This QR code has been switched off.",
    gone_not_yet: "This QR code is not active yet.",
    gone_expired: "This QR code has expired.",
    bad_request_title: "Bad request",
};

#[derive(Template)]
#[template(path = "page.html")]
struct Page<'a> {
    lang: &'static str,
    title: &'a str,
    message: &'a str,
    hint: Option<&'a str>,
    open_url: Option<&'a str>,
    open_label: &'a str,
    qr_svg: Option<&'a str>,
    fallback_url: Option<&'a str>,
    fallback_label: &'a str,
    device_url: Option<&'a str>,
    device_label: &'a str,
    auto_open: bool,
    touch_mac_open: bool,
    /// The `scancode_time` in the scheme URLs, for the script that makes
    /// it the time the page is opened.
    scancode_time: Option<i64>,
}

impl<'a> Page<'a> {
    fn new(texts: &'a Texts, title: &'a str, message: &'a str) -> Page<'a> {
        Page {
            lang: texts.html_lang,
            title,
            message,
            hint: None,
            open_url: None,
            open_label: texts.open_button,
            qr_svg: None,
            fallback_url: None,
            fallback_label: texts.fallback,
            device_url: None,
            device_label: texts.device_link,
            auto_open: false,
            touch_mac_open: false,
            scancode_time: None,
        }
    }

    fn render(&self, capacity: usize) -> String {
        let mut out = String::with_capacity(capacity);
        // Rendering into a String only fails if a Display impl fails; ours
        // are plain strings.
        let _ = self.render_into(&mut out);
        out
    }
}

/// What a launch page needs.
pub struct Launch<'a> {
    pub class: ClientClass,
    pub lang: Lang,
    /// The `weixin://` URL the tap target opens.
    pub scheme_url: &'a str,
    /// The URL shown as a QR code where one is needed: a code's own URL,
    /// or the scanned URL of a rule (no QR past [`QrCache::MAX_URL`]).
    ///
    /// [`QrCache::MAX_URL`]: super::qr_cache::QrCache::MAX_URL
    pub qr_url: &'a str,
    pub fallback_url: Option<&'a str>,
    /// Where the QR code of `qr_url` is drawn (once per URL).
    pub qr_codes: &'a super::qr_cache::QrCache,
    /// The `scancode_time` in `scheme_url` (legacy scans): the page sets
    /// it to the time it is opened, as a cached copy may be older.
    pub scancode_time: Option<i64>,
}

/// A rendered launch page.
pub struct Rendered {
    pub html: String,
    /// `false` when the page went without the QR code it should have had
    /// because the node was busy drawing: it must not be cached.
    pub complete: bool,
}

/// The launch page for a client that cannot follow a redirect into WeChat.
pub fn launch(page: &Launch<'_>) -> Rendered {
    use super::qr_cache::QrImage;
    let t = page.lang.texts();
    let mut complete = true;
    let mut qr = || match page.qr_codes.svg(page.qr_url) {
        QrImage::Svg(svg) => (Some(svg), None),
        QrImage::TooLong => (None, Some(t.qr_too_long)),
        QrImage::Busy => {
            complete = false;
            (None, Some(t.qr_busy))
        }
    };
    let (svg, hint, rendered);
    match page.class {
        ClientClass::Wechat => {
            (svg, hint) = qr();
            let mut p = Page::new(t, t.wechat_title, t.wechat_message);
            p.qr_svg = svg.as_deref();
            p.hint = hint;
            p.fallback_url = page.fallback_url;
            p.scancode_time = page.scancode_time;
            rendered = p.render(8 * 1024);
        }
        ClientClass::Inapp => {
            (svg, hint) = qr();
            let mut p = Page::new(t, t.inapp_title, t.inapp_message);
            p.open_url = Some(page.scheme_url);
            p.qr_svg = svg.as_deref();
            p.hint = hint;
            p.fallback_url = page.fallback_url;
            p.scancode_time = page.scancode_time;
            rendered = p.render(8 * 1024);
        }
        ClientClass::Desktop => {
            (svg, hint) = qr();
            let mut p = Page::new(t, t.desktop_title, t.desktop_message);
            p.qr_svg = svg.as_deref();
            p.hint = hint;
            p.fallback_url = page.fallback_url;
            // An iPad asks as a Mac; on a touch screen the page opens WeChat.
            p.device_url = Some(page.scheme_url);
            p.touch_mac_open = true;
            p.scancode_time = page.scancode_time;
            rendered = p.render(8 * 1024);
        }
        ClientClass::Android | ClientClass::Ios | ClientClass::Other => {
            let mut p = Page::new(t, t.android_title, t.android_message);
            p.open_url = Some(page.scheme_url);
            p.fallback_url = page.fallback_url;
            p.auto_open = true;
            p.scancode_time = page.scancode_time;
            rendered = p.render(2 * 1024);
        }
    }
    Rendered {
        html: rendered,
        complete,
    }
}

/// Why an error page is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem<'a> {
    NotFound,
    Gone(Availability),
    BadRequest(&'a str),
    /// Anything else, worded by the caller (405, 414, 503, …).
    Other {
        title: &'a str,
        message: &'a str,
    },
}

/// The 404/410/400 page; a 410 keeps the entry's fallback link.
pub fn error(problem: Problem<'_>, lang: Lang, fallback_url: Option<&str>) -> String {
    let t = lang.texts();
    let (title, message) = match problem {
        Problem::NotFound => (t.not_found_title, t.not_found_message),
        Problem::Gone(Availability::Disabled) => (t.gone_title, t.gone_disabled),
        Problem::Gone(Availability::NotYetValid) => (t.gone_title, t.gone_not_yet),
        Problem::Gone(_) => (t.gone_title, t.gone_expired),
        Problem::BadRequest(detail) => (t.bad_request_title, detail),
        Problem::Other { title, message } => (title, message),
    };
    let mut p = Page::new(t, title, message);
    p.fallback_url = fallback_url;
    p.render(2 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_preferred_language_decides() {
        let cases: &[(Option<&str>, Lang)] = &[
            (None, Lang::En),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("zh-Hans"), Lang::Zh),
            (Some("ZH-tw"), Lang::Zh),
            (Some("en-US,en;q=0.9,zh-CN;q=0.8"), Lang::En),
            (Some("en;q=0.5, zh;q=0.8"), Lang::Zh),
            (Some("zh;q=0, en"), Lang::En),
            (Some("*"), Lang::En),
            (Some("fr, zh;q=0.9"), Lang::En),
            (Some(";;,,q=x"), Lang::En),
        ];
        for (header, want) in cases {
            assert_eq!(language(header.map(str::as_bytes)), *want, "{header:?}");
        }
    }

    #[test]
    fn hostile_values_are_escaped() {
        let scheme = r#"weixin://dl/business/?appid=wx1234567890abcdef&path=p&query=a%3D%22%3E%3Cscript%3E"#;
        let page = launch(&Launch {
            class: ClientClass::Inapp,
            lang: Lang::Zh,
            scheme_url: scheme,
            qr_url: "https://x.example.com/a?b=<c>&d=\"e\"",
            fallback_url: Some("https://example.com/\"><script>alert(1)</script>&x='y'"),
            qr_codes: &crate::edge::http::qr_cache::QrCache::default(),
            scancode_time: None,
        })
        .html;
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(
            page.contains("https://example.com/&#34;&#62;&#60;script&#62;alert(1)"),
            "{page}"
        );
        assert!(
            page.contains("href=\"weixin://dl/business/?appid=wx1234567890abcdef&#38;path=p"),
            "{page}"
        );
        assert!(page.contains("二维码"));
        assert!(page.len() < 16 * 1024, "{} bytes", page.len());
        let gone = error(
            Problem::Gone(Availability::Expired),
            Lang::En,
            Some("https://example.com/a&b"),
        );
        assert!(
            gone.contains("has expired") && gone.contains("https://example.com/a&#38;b"),
            "{gone}"
        );
        let bad = error(Problem::BadRequest("<b>"), Lang::En, None);
        assert!(bad.contains("&#60;b&#62;"), "{bad}");
    }
}
