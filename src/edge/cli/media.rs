//! `qrlaunch code qr`, `qrlaunch qr --all` and `qrlaunch stats`.

use super::client::{AdminClient, CliError};
use super::output;
use crate::edge::api::{DayCounts, Page, StatsAnswer};
use crate::edge::config::{QrAllArgs, QrArgs, QrFormat, StatsArgs};
use crate::model::client_class::CountClass;
use crate::model::percent::encoded;
use reqwest::Method;
use std::path::Path;

/// The format for `path`: the flag, else its extension, else SVG.
fn format_for(style: &QrArgs, path: &Path) -> QrFormat {
    style.format.unwrap_or_else(|| {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => QrFormat::Png,
            _ => QrFormat::Svg,
        }
    })
}

fn qr_path(code: &str, format: QrFormat, style: &QrArgs) -> String {
    format!(
        "/admin/v1/codes/{}/qr?format={}&size={}&margin={}&ec={}",
        encoded(code),
        format.extension(),
        style.size,
        style.margin,
        encoded(&style.ec)
    )
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    std::fs::write(path, bytes).map_err(|e| CliError::File {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Writes one code's QR image to `out`.
pub fn code_qr(client: &AdminClient, code: &str, out: &Path, style: &QrArgs) -> Result<(), CliError> {
    let format = format_for(style, out);
    let response = client.send(client.request(Method::GET, &qr_path(code, format, style)))?;
    let url = response
        .headers()
        .get(crate::edge::admin::qr::QR_URL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let warning = warning_of(&response);
    let bytes = response.bytes().map_err(|e| CliError::Answer(e.to_string()))?;
    write_file(out, &bytes)?;
    eprintln!("{}: {url}", out.display());
    if let Some(warning) = warning {
        eprintln!("qrlaunch: warning: {warning}");
    }
    Ok(())
}

/// The server's warning that an image encodes an address phones cannot reach.
fn warning_of(response: &reqwest::blocking::Response) -> Option<String> {
    response
        .headers()
        .get(crate::edge::admin::qr::QR_WARNING_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Calls `each` with every code (with `tag`, when given), page by page;
/// returns how many there were.
pub(super) fn for_each_code(
    client: &AdminClient,
    tag: Option<&str>,
    mut each: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<usize, CliError> {
    let mut after: Option<String> = None;
    let mut seen = 0usize;
    loop {
        let mut path = "/admin/v1/codes?limit=1000".to_string();
        if let Some(tag) = tag {
            path.push_str(&format!("&tag={}", encoded(tag)));
        }
        if let Some(after) = &after {
            path.push_str(&format!("&after={}", encoded(after)));
        }
        let page: Page = client.json(client.request(Method::GET, &path))?;
        for item in &page.items {
            let Some(code) = &item.line.code else { continue };
            each(code)?;
            seen += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(seen),
        }
    }
}

/// Writes a QR image for every code (with a tag) into a directory, named
/// by code.
pub fn all_qr(client: &AdminClient, args: &QrAllArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::File {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    let format = args.style.format.unwrap_or(QrFormat::Png);
    let written = for_each_code(client, args.tag.as_deref(), |code| {
        let response = client.send(client.request(Method::GET, &qr_path(code, format, &args.style)))?;
        // Hundreds of images for print that phones cannot open: refuse
        // unless asked for.
        if let Some(warning) = warning_of(&response) {
            if !args.allow_loopback {
                return Err(CliError::Usage {
                    field: "allow-loopback".into(),
                    message: format!("{warning}; nothing was written (--allow-loopback writes them anyway)"),
                });
            }
        }
        let bytes = response.bytes().map_err(|e| CliError::Answer(e.to_string()))?;
        write_file(&args.out.join(format!("{code}.{}", format.extension())), &bytes)
    })?;
    if written == 0 {
        return Err(CliError::Usage {
            field: "tag".into(),
            message: "no code matched: nothing was written".into(),
        });
    }
    eprintln!("{written} QR images written to {}", args.out.display());
    Ok(())
}

/// Prints scan counts as a table or CSV.
pub fn stats(client: &AdminClient, args: &StatsArgs) -> Result<(), CliError> {
    let mut path = match (&args.code, &args.rule, &args.tag, &args.host) {
        (Some(code), ..) => format!("/admin/v1/codes/{}/stats?", encoded(code)),
        (_, Some(rule), ..) => format!("/admin/v1/rules/stats?prefix={}&", encoded(rule)),
        (_, _, Some(tag), _) => format!("/admin/v1/stats?tag={}&kind={}&", encoded(tag), args.kind),
        (_, _, _, Some(host)) => format!("/admin/v1/hosts/{}/stats?", encoded(host)),
        _ => {
            return Err(CliError::Usage {
                field: "code".into(),
                message: "name a code, --rule, --tag or --host".into(),
            })
        }
    };
    if let Some(from) = &args.from {
        path.push_str(&format!("from={}&", encoded(from)));
    }
    if let Some(to) = &args.to {
        path.push_str(&format!("to={}&", encoded(to)));
    }
    if let Some(by) = &args.by {
        path.push_str(&format!("by={}&", encoded(by)));
    }
    if args.include_other {
        path.push_str("include_other=true&");
    }
    let answer: StatsAnswer = client.json(client.request(Method::GET, path.trim_end_matches(['&', '?'])))?;
    output::finish(print_stats(&answer, args.csv))
}

fn print_stats(answer: &StatsAnswer, csv: bool) -> Result<(), output::Closed> {
    let host = answer.kind == "host";
    let classes: Vec<CountClass> = if host {
        vec![CountClass::NotFound]
    } else {
        CountClass::COLUMNS.to_vec()
    };
    // A campaign or counts by value in a spreadsheet: one row per entry,
    // day and class, so a pivot table can cut it any way.
    if csv && (answer.tag.is_some() || answer.by.is_some()) {
        let (group, entry) = match (&answer.tag, &answer.by) {
            (Some(_), _) => ("tag", answer.kind.as_str()),
            (None, Some(by)) => ("rule", by.as_str()),
            (None, None) => ("", ""),
        };
        let group_value = answer.tag.as_deref().or(answer.key.as_deref()).unwrap_or("");
        output::line(&format!("{group},{},day,class,scans", csv_cell(entry)))?;
        for e in &answer.entries {
            for day in &e.days {
                for &class in &classes {
                    let n = day.of(class);
                    if n > 0 {
                        output::line(&format!(
                            "{},{},{},{},{n}",
                            csv_cell(group_value),
                            csv_cell(&e.key),
                            day.day.as_deref().unwrap_or(""),
                            class.as_str()
                        ))?;
                    }
                }
            }
        }
        return Ok(());
    }
    let mut columns = vec!["day"];
    columns.extend(classes.iter().map(|c| c.as_str()));
    if !host {
        columns.push(match (answer.include_other, csv) {
            (true, _) => "total",
            (false, true) => "total_without_other",
            (false, false) => "total (without other)",
        });
    }
    let cells = |label: &str, d: &DayCounts| -> Vec<String> {
        let mut row = vec![label.to_string()];
        row.extend(classes.iter().map(|&c| d.of(c).to_string()));
        if !host {
            row.push(d.total.to_string());
        }
        row
    };
    let mut rows: Vec<Vec<String>> = answer
        .days
        .iter()
        .map(|d| cells(d.day.as_deref().unwrap_or(""), d))
        .collect();
    rows.push(cells("total", &answer.total));
    if csv {
        output::line(&columns.join(","))?;
        for row in &rows {
            output::line(&row.join(","))?;
        }
        return Ok(());
    }
    let heading = match (&answer.tag, &answer.by, &answer.key) {
        (Some(tag), _, _) => format!("tag {tag} ({}s)", answer.kind),
        (None, Some(by), Some(key)) => format!("rule {key} by {by}"),
        (None, None, Some(key)) => format!("{} {key}", answer.kind),
        _ => answer.kind.clone(),
    };
    let zone = if answer.time_zone.is_empty() {
        "UTC"
    } else {
        &answer.time_zone
    };
    output::line(&format!("{heading}, {} to {} ({zone})", answer.from, answer.to))?;
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([columns[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |row: &[&str]| {
        row.iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    output::line(&render(&columns))?;
    for row in &rows {
        output::line(&render(&row.iter().map(String::as_str).collect::<Vec<_>>()))?;
    }
    if !answer.entries.is_empty() {
        output::line("")?;
        output::line(if answer.by.is_some() { "by value:" } else { "by entry:" })?;
        for entry in &answer.entries {
            output::line(&format!("  {}  {}", entry.key, entry.total))?;
        }
    }
    Ok(())
}

/// A CSV cell: quoted when it holds a comma, a quote or a line break, and
/// never a formula ([`spreadsheet_safe`](crate::model::table_file::csv::spreadsheet_safe)).
fn csv_cell(text: &str) -> String {
    let text = crate::model::table_file::csv::spreadsheet_safe(text);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
