//! CSV table files: a header row naming the table file's fields, one
//! entry a row, turned into NDJSON lines for the one [`super::Reader`]
//! (`qrlaunch import`, the console's import).

/// A CSV cell a spreadsheet will not run as a formula: a value that starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'` in front
/// (codes may start with `=`, `+`, `-` or `@`; a poster parameter is
/// whatever a scanner sent).
pub fn spreadsheet_safe(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Tags as typed in one cell or box: separated by spaces or commas.
pub fn split_tags(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c == '，' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("the header row names `{0}`, which is not a field (code, prefix, host, file, appid, path, query, env_version, fallback_url, valid_from, valid_until, disabled, tags, count_by, unmatched, body)")]
    UnknownColumn(String),
}

/// A CSV file with a header row naming the table file's fields, as NDJSON.
/// The output keeps the file's line numbers (a blank line for the header
/// and for the extra lines of a quoted cell that spans several), so an
/// import's `line 3` is line 3 of the CSV file. Empty cells are left out;
/// `tags` holds tags separated by spaces or commas; `disabled` is
/// `true`/`false` (or `1`/`0`, `yes`/`no`). The number of rows.
pub fn csv_to_ndjson(input: impl std::io::Read, mut out: impl std::io::Write) -> Result<u64, CsvError> {
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
    if let Some(unknown) = names.iter().find(|n| super::known_field(n).is_none()) {
        return Err(CsvError::UnknownColumn(unknown.clone()));
    }
    let mut rows = 0;
    let mut written = 0u64;
    for record in reader.records() {
        let record = record.map_err(|e| CsvError::Line {
            line: line_of(&e),
            message: e.to_string(),
        })?;
        let at = record.position().map_or(written + 1, csv::Position::line);
        while written + 1 < at {
            out.write_all(b"\n").map_err(|e| CsvError::Line {
                line: at,
                message: e.to_string(),
            })?;
            written += 1;
        }
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
                line: at,
                message: e.to_string(),
            })?;
        written += 1;
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
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "", "the header's line");
        let lines: Vec<serde_json::Value> = lines[1..].iter().map(|l| serde_json::from_str(l).unwrap()).collect();
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
    fn a_cell_over_two_lines_keeps_the_file_s_line_numbers() {
        let csv = "code,query\na,\"x=1\ny=2\"\nb,z=3\n";
        let mut out = Vec::new();
        csv_to_ndjson(csv.as_bytes(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text:?}");
        assert!(
            lines[3].contains(r#""code":"b""#),
            "row b is on line 4 as in the file: {text:?}"
        );
    }
}
