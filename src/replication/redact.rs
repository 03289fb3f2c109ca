//! URLs as they may appear in logs, errors and `--help`: without the
//! secrets some of them carry (a password in the user info, or in a query
//! parameter such as PostgreSQL's `?password=`).

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword", "token", "secret", "key"];

/// `url` with its user info's password and secret query values replaced by
/// `***` (and a user name kept, which helps diagnose).
pub fn url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(an unparsable URL)".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                (k.into_owned(), if secret { "***".into() } else { v.into_owned() })
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_replaced_and_the_rest_kept() {
        let cases = [
            (
                "postgres://qr:s3cret@db.example.com:5432/qrlaunch",
                "postgres://qr:***@db.example.com:5432/qrlaunch",
            ),
            (
                "postgres://db.example.com/qrlaunch?user=qr&password=s3cret&sslmode=require",
                "postgres://db.example.com/qrlaunch?user=qr&password=***&sslmode=require",
            ),
            (
                "postgresql://qr@db/q?PassWord=x&sslpassword=y",
                "postgresql://qr@db/q?PassWord=***&sslpassword=***",
            ),
            ("http://purger:pw@127.0.0.1:6081/", "http://purger:***@127.0.0.1:6081/"),
            ("http://127.0.0.1:6081", "http://127.0.0.1:6081/"),
            ("not a url", "(an unparsable URL)"),
        ];
        for (given, want) in cases {
            assert_eq!(super::url(given), want);
            assert!(!super::url(given).contains("s3cret"));
        }
    }
}
