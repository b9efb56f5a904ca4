//! Writing results safely and fingerprinting inputs.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use genopred_data::error::{CoreError, Result};

/// Name prefix of the temporary files [`write_atomic`] renames into place.
pub const TEMP_PREFIX: &str = ".genopred-";

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and synced,
/// then renamed over `path`. A reader never sees a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CoreError::Write { path: dir.to_path_buf(), source: e })?;
    let werr = |e: std::io::Error| CoreError::Write { path: path.to_path_buf(), source: e };
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // Results and saved models are shared with colleagues and cluster jobs: readable by all,
    // like any file a program writes (tempfile's default is owner-only).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut tmp = builder.tempfile_in(dir).map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(path).map_err(|e| werr(e.error))?;
    Ok(())
}

/// Writes `rows` as CSV (a header from the first row's field names) atomically; `delimiter`
/// `b'\t'` writes TSV. Text fields a spreadsheet would run as a formula are neutralised
/// ([`spreadsheet_safe`]).
pub fn write_csv<T: serde::Serialize>(path: &Path, rows: impl IntoIterator<Item = T>, delimiter: u8) -> Result<()> {
    let werr = |e: csv::Error| CoreError::format(path, format!("cannot serialise a row: {e}"));
    let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(werr)?;
    }
    let bytes = w.into_inner().map_err(|e| CoreError::format(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &neutralise_formulas(&bytes, delimiter).map_err(werr)?)
}

/// `field` as a spreadsheet should see it: a text that Excel, LibreOffice or Google Sheets
/// would run as a formula — it starts with `=`, `+`, `-`, `@`, a tab or a carriage return and
/// is not a number — gets a leading `'`, which they show as text (OWASP's advice on CSV
/// injection). Numbers (`-0.53`, `+1e-3`) and every other field are left as they are. Only
/// sample and marker ids can be such texts; genopred's own values never are.
pub fn spreadsheet_safe(field: &str) -> std::borrow::Cow<'_, str> {
    let risky = field.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && field.trim().parse::<f64>().is_err() {
        std::borrow::Cow::Owned(format!("'{field}"))
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

/// CSV `bytes` with every field passed through [`spreadsheet_safe`] (the same bytes when none
/// needed it, the usual case).
pub fn neutralise_formulas(bytes: &[u8], delimiter: u8) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).delimiter(delimiter).from_reader(bytes);
    let records: Vec<csv::ByteRecord> = reader.byte_records().collect::<std::result::Result<_, _>>()?;
    let needs =
        |f: &[u8]| std::str::from_utf8(f).is_ok_and(|t| matches!(spreadsheet_safe(t), std::borrow::Cow::Owned(_)));
    if !records.iter().any(|r| r.iter().any(needs)) {
        return Ok(bytes.to_vec());
    }
    let mut w = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
    for r in &records {
        let fields: Vec<Vec<u8>> = r
            .iter()
            .map(|f| match std::str::from_utf8(f) {
                Ok(t) => spreadsheet_safe(t).into_owned().into_bytes(),
                Err(_) => f.to_vec(),
            })
            .collect();
        w.write_record(&fields)?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Reads a fitted model's JSON state `file` from the folder `dir` (the classical models' saved
/// state); the error names the file.
pub fn read_json_state<T: serde::de::DeserializeOwned>(dir: &Path, file: &str) -> std::result::Result<T, String> {
    let path = dir.join(file);
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// SHA-256 of a file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| CoreError::io(path, e))?;
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 of `bytes`, hex-encoded (the same digits [`sha256_file`] gives for a file holding them).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A duration for people, as reports and figure labels print it: "0 s", "850 µs", "12 ms",
/// "0.8 s", "12 s", "3.4 min", "1 h 12 min" ("—" when not finite).
///
/// One decimal below 10 s, whole seconds up to two minutes, then minutes with one decimal, then
/// hours and minutes; below a tenth of a second, whole (or one-decimal) milli- or microseconds,
/// so that the short steps of a log-scale axis stay apart.
pub fn format_duration(seconds: f64) -> String {
    // One decimal below 10, none above; a trailing ".0" dropped.
    let small = |x: f64| {
        let s = if x < 10.0 { format!("{x:.1}") } else { format!("{x:.0}") };
        s.strip_suffix(".0").map_or(s.clone(), str::to_string)
    };
    if !seconds.is_finite() {
        "—".into()
    } else if seconds <= 0.0 {
        "0 s".into()
    } else if seconds < 0.999_5e-3 {
        // (thresholds where the smaller unit would round up to 1,000 µs or 100 ms)
        format!("{} µs", small(seconds * 1e6))
    } else if seconds < 0.099_5 {
        format!("{} ms", small(seconds * 1e3))
    } else if seconds < 10.0 {
        format!("{seconds:.1} s")
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{} h {:02.0} min", (seconds / 3600.0).floor(), (seconds % 3600.0) / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_a_spreadsheet_would_run_are_neutralised_and_numbers_are_not() {
        for (field, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+A1*2", "'+A1*2"),
            ("-1+1", "'-1+1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("-0.53", "-0.53"),
            ("+1e-3", "+1e-3"),
            ("line-7", "line-7"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(field), want, "{field}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        #[derive(serde::Serialize)]
        struct Row<'a> {
            id: &'a str,
            predicted: f64,
        }
        write_csv(&p, [Row { id: "=1+1", predicted: -0.5 }, Row { id: "G1", predicted: 1.0 }], b',').unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "id,predicted\n'=1+1,-0.5\nG1,1.0\n");
        // Quoted fields (a comma in an id) survive the rewrite.
        write_csv(&p, [Row { id: "@a,b", predicted: 2.0 }], b',').unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "id,predicted\n\"'@a,b\",2.0\n");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o644);
        }
        assert_eq!(sha256_file(&p).unwrap(), "3fc4ccfe745870e2c0d99f71f30ff0656c8dedd41cc1d7d3d376b0dbe685e2f3");
        assert_eq!(sha256_hex(b"two"), sha256_file(&p).unwrap());
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (f64::NAN, "—"),
            (0.0, "0 s"),
            (2e-4, "200 µs"),
            (0.012, "12 ms"),
            (0.0015, "1.5 ms"),
            (0.0998, "0.1 s"),
            (0.0009996, "1 ms"),
            (0.31, "0.3 s"),
            (0.85, "0.8 s"),
            (1.23, "1.2 s"),
            (34.4, "34 s"),
            (42.0, "42 s"),
            (204.0, "3.4 min"),
            (600.0, "10.0 min"),
            (4000.0, "1 h 07 min"),
            (7560.0, "2 h 06 min"),
        ];
        for (seconds, text) in cases {
            assert_eq!(format_duration(seconds), text, "{seconds}");
        }
    }
}
