//! Form fields to the admin API's JSON, and CSV files to NDJSON. No rule
//! is checked here: empty fields are left out and the API says what is
//! missing or wrong, field by field.

use crate::model::domain::Line;

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

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.into(), value.into()));
    }
}

/// Tags as typed in one box: separated by spaces or commas.
pub fn split_tags(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == '，' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
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

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("the header row names `{0}`, which is not a field (code, prefix, host, file, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, count_by, unmatched, body)")]
    UnknownColumn(String),
}

/// A CSV file with a header row naming the table file's fields, as NDJSON
/// (one line a row, in order, so the API's line numbers are the file's
/// rows after the header: row 2 is line 1). Empty cells are left out;
/// `tags` holds tags separated by spaces or commas; `disabled` is
/// `true`/`false` (or `1`/`0`, `yes`/`no`).
pub fn csv_to_ndjson(input: impl std::io::Read, mut out: impl std::io::Write) -> Result<u64, CsvError> {
    const COLUMNS: [&str; 16] = [
        "code",
        "prefix",
        "host",
        "file",
        "appid",
        "path",
        "query",
        "env_version",
        "fallback_url",
        "valid_from",
        "valid_until",
        "disabled",
        "tags",
        "count_by",
        "unmatched",
        "body",
    ];
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
    let line_of = |e: &csv::Error| e.position().map_or(0, csv::Position::line);
    let headers = reader
        .headers()
        .map_err(|e| CsvError::Line {
            line: line_of(&e),
            message: e.to_string(),
        })?
        .clone();
    let names: Vec<String> = headers
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !COLUMNS.contains(&n.as_str())) {
        return Err(CsvError::UnknownColumn(unknown.clone()));
    }
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| CsvError::Line {
            line: line_of(&e),
            message: e.to_string(),
        })?;
        let mut object = serde_json::Map::new();
        for (name, value) in names.iter().zip(record.iter()) {
            if value.is_empty() {
                continue;
            }
            let value = match name.as_str() {
                "tags" => serde_json::Value::from(split_tags(value)),
                "disabled" => match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true.into(),
                    "false" | "0" | "no" => false.into(),
                    // Left as text: the API names the field and the line.
                    other => other.into(),
                },
                _ => value.into(),
            };
            object.insert(name.clone(), value);
        }
        let line = serde_json::to_string(&object).unwrap_or_default();
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| CsvError::Line {
                line: record.position().map_or(0, csv::Position::line),
                message: e.to_string(),
            })?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_ndjson_lines_in_order() {
        let csv = "code,appid,path,query,tags,disabled\n\
                   a1,wx1234567890abcdef,pages/a,x=1,\"spring summer\",false\n\
                   ,wx1234567890abcdef,pages/b,,spring,TRUE\n";
        let mut out = Vec::new();
        assert_eq!(csv_to_ndjson(csv.as_bytes(), &mut out).unwrap(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"code":"a1","appid":"wx1234567890abcdef","path":"pages/a","query":"x=1","tags":["spring","summer"],"disabled":false})
        );
        assert_eq!(
            lines[1],
            serde_json::json!({"appid":"wx1234567890abcdef","path":"pages/b","tags":["spring"],"disabled":true})
        );
    }

    #[test]
    fn an_unknown_column_or_a_short_row_is_named() {
        let error = csv_to_ndjson("code,colour\na,b\n".as_bytes(), Vec::new()).unwrap_err();
        assert!(error.to_string().contains("`colour`"), "{error}");
        let error = csv_to_ndjson("code,appid\na\n".as_bytes(), Vec::new()).unwrap_err();
        assert!(error.to_string().starts_with("line 2"), "{error}");
    }

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
