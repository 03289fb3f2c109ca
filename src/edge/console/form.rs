//! Form fields to the admin API's JSON. No rule is checked here: empty
//! fields are left out and the API says what is missing or wrong, field by
//! field.

use crate::model::domain::Line;
pub use crate::model::table_file::csv::split_tags;

/// The fields of a posted form, in order.
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, if not empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// Whether a checkbox `name` is ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "on" || v == "true" || v == "1")
    }

    /// Makes `value` the only value of `name`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(k, _)| k != name);
        self.push(name, value);
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.into(), value.into()));
    }
}

/// A code or rule as the entry form posted it.
pub fn line_of(fields: &Fields) -> Line {
    Line {
        code: fields.text("code"),
        prefix: fields.text("prefix"),
        appid: fields.text("appid"),
        path: fields.text("path").map(|p| p.trim_start_matches('/').to_string()),
        query: fields.text("query"),
        env_version: fields.text("env_version"),
        fallback_url: fields.text("fallback_url"),
        valid_from: fields.text("valid_from"),
        valid_until: fields.text("valid_until"),
        disabled: fields.ticked("disabled"),
        tags: split_tags(fields.get("tags").unwrap_or("")),
        count_by: fields.text("count_by"),
        ..Line::default()
    }
}

/// An entry's values as the form shows them.
pub fn fields_of(line: &Line) -> Fields {
    let mut fields = Fields::default();
    let mut put = |name: &str, value: &Option<String>| fields.push(name, value.as_deref().unwrap_or(""));
    put("code", &line.code);
    put("prefix", &line.prefix);
    put("appid", &line.appid);
    put("path", &line.path);
    put("query", &line.query);
    put("env_version", &line.env_version);
    put("fallback_url", &line.fallback_url);
    put("valid_from", &line.valid_from);
    put("valid_until", &line.valid_until);
    put("count_by", &line.count_by);
    fields.push("tags", &line.tags.join(" "));
    if line.disabled {
        fields.push("disabled", "on");
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_a_line_without_empty_fields() {
        let fields = Fields::parse(b"code=&appid=wx1&path=%2Fpages%2Fa&tags=a%2C+b&disabled=on&csrf=x");
        let line = line_of(&fields);
        assert_eq!(line.code, None);
        assert_eq!(line.path.as_deref(), Some("pages/a"));
        assert_eq!(line.tags, ["a", "b"]);
        assert!(line.disabled);
        assert_eq!(fields_of(&line).get("tags"), Some("a b"));
    }
}
