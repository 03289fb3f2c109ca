//! The scan path: codes, rules, `/v1/resolve`, bad input, metrics,
//! lifecycle, through a real HTTP client (and raw TCP for malformed requests).

mod codes;
mod errors;
mod lifecycle;
mod observability;
mod resolve;
mod rules;

/// The table every scan test serves unless it says otherwise.
pub const TABLE: &str = r#"{"code":"spring24","appid":"wx1234567890abcdef","path":"pages/promo/index","query":"id=42&from=poster","fallback_url":"https://example.com/promo"}
{"code":"amp","appid":"wx1234567890abcdef","path":"pages/a/index","query":"a=1&b=x=y&pct=100%25&sp=a b&zh=中文&u=https%3A%2F%2Fa.example%2Fx%3Fy%3D1"}
{"code":"nested","appid":"wx1234567890abcdef","path":"pages/a/index","query":"next=https://shop.example.com/p?id=1&ref=qr"}
{"code":"a!b","appid":"wx1234567890abcdef","path":"pages/special/index","query":"c=1"}
{"code":"$&'()*+,:;=@-._~","appid":"wx1234567890abcdef","path":"pages/special/index","query":"c=2"}
{"code":"Case","appid":"wx1234567890abcdef","path":"pages/case/upper","env_version":"trial"}
{"code":"case","appid":"wx1234567890abcdef","path":"pages/case/lower","env_version":"develop"}
{"code":"expired","appid":"wx1234567890abcdef","path":"p","valid_until":"2020-01-01T00:00:00Z","fallback_url":"https://example.com/over"}
{"code":"future","appid":"wx1234567890abcdef","path":"p","valid_from":"2099-01-01T00:00:00Z"}
{"code":"off","appid":"wx1234567890abcdef","path":"p","disabled":true}
{"code":"download","appid":"wx1234567890abcdef","path":"pages/code-wins/index"}
{"prefix":"https://www.qq.com/a/b","appid":"wx1234567890abcdef","path":"rule/ab"}
{"prefix":"https://www.qq.com/a/","appid":"wx1234567890abcdef","path":"rule/a-slash"}
{"prefix":"https://www.qq.com/q/b?id=123","appid":"wx1234567890abcdef","path":"rule/q123","query":"from=rule"}
{"prefix":"https://www.qq.com/q/b?id=12","appid":"wx1234567890abcdef","path":"rule/q12"}
{"prefix":"http://plain.example.com/dl","appid":"wx1234567890abcdef","path":"rule/plain","query":"src=poster"}
{"prefix":"https://plain.example.com/","appid":"wx1234567890abcdef","path":"rule/https-root"}
{"prefix":"https://gone.example.com/","appid":"wx1234567890abcdef","path":"rule/gone","disabled":true}
"#;

/// Splits a `weixin://dl/business/?…` URL into its parameters (not decoded).
pub fn scheme_params(location: &str) -> std::collections::HashMap<String, String> {
    let query = location
        .strip_prefix("weixin://dl/business/?")
        .unwrap_or_else(|| panic!("not a scheme URL: {location}"));
    query
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Percent-decodes once.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("UTF-8")
        .into_owned()
}
