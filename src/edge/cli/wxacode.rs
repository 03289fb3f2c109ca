//! `qrlaunch wxacode`: mini program codes through
//! `GET /admin/v1/codes/{code}/wxacode` (the node holds WeChat's secret and
//! token; see `src/edge/wechat.rs`).

use super::client::{AdminClient, CliError};
use super::media::for_each_code;
use crate::edge::config::WxacodeArgs;
use crate::model::percent::encoded;
use reqwest::Method;
use std::path::{Path, PathBuf};

/// One code's image and the extension its content type calls for.
fn fetch(client: &AdminClient, code: &str, width: u32) -> Result<(Vec<u8>, &'static str), CliError> {
    let path = format!("/admin/v1/codes/{}/wxacode?width={width}", encoded(code));
    let response = client.send(client.request(Method::GET, &path))?;
    let extension = match response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t.starts_with("image/png") => "png",
        _ => "jpg",
    };
    let bytes = response.bytes().map_err(|e| CliError::Answer(e.to_string()))?;
    Ok((bytes.to_vec(), extension))
}

/// Writes `bytes` to `path` whole or not at all (a `.partial` file renamed).
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::File {
        path: path.into(),
        reason: e.to_string(),
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)
}

pub fn wxacode(client: &AdminClient, args: &WxacodeArgs) -> Result<(), CliError> {
    let Some(code) = &args.code else {
        return all(client, args);
    };
    let (bytes, _) = fetch(client, code, args.width)?;
    write_whole(&args.out, &bytes)?;
    eprintln!("{}: mini program code of {code}", args.out.display());
    Ok(())
}

/// Every code (with a tag) into a directory. With `--skip-existing` an
/// image that is there already is kept, so a run stopped by WeChat's quota
/// goes on where it stopped (an image carries the code, not its target,
/// but also the landing page, version and width it was made with).
fn all(client: &AdminClient, args: &WxacodeArgs) -> Result<(), CliError> {
    std::fs::create_dir_all(&args.out).map_err(|e| CliError::File {
        path: args.out.clone(),
        reason: e.to_string(),
    })?;
    let (mut written, mut kept) = (0usize, 0usize);
    let result = for_each_code(client, args.tag.as_deref(), |code| {
        if args.skip_existing
            && ["jpg", "png"]
                .iter()
                .any(|ext| args.out.join(format!("{code}.{ext}")).exists())
        {
            kept += 1;
            return Ok(());
        }
        let (bytes, extension) = fetch(client, code, args.width)?;
        write_whole(&args.out.join(format!("{code}.{extension}")), &bytes)?;
        written += 1;
        Ok(())
    });
    let summary = format!(
        "{written} mini program codes written to {}{}",
        args.out.display(),
        if kept > 0 {
            format!(", {kept} there already kept")
        } else {
            String::new()
        }
    );
    match result {
        Ok(0) => Err(CliError::Usage {
            field: "tag".into(),
            message: "no code matched: nothing was written".into(),
        }),
        Ok(_) => {
            eprintln!("{summary}");
            Ok(())
        }
        Err(e) => {
            eprintln!("{summary} before this error; run it again with --skip-existing to go on");
            Err(e)
        }
    }
}
